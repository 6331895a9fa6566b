/* Unit tests of the model catalogue: router/src/models/models.c (records,
 * persistence, add and remove), models_id.c (the id rule), models_gguf.c
 * (headers through ggml's gguf reader, SHA-256) and models_discover.c, on
 * real files and a real SQLite store in a temporary directory. The GGUFs
 * are written here with ggml's own gguf writer, so each test says exactly
 * which keys a file has. */
#include "models/models.h"
#include "store/store.h"

#include "util.h"

#include <cjson/cJSON.h>
#include <ggml.h>
#include <gguf.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/llmr-test-models-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = cm_xasprintf("rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static char *at(const char *rel) { return cm_xasprintf("%s/%s", g_dir, rel); }

static void mkdirs(const char *rel)
{
    char *p = at(rel);
    assert_int_equal(cm_mkdir_p(p, 0755), 0);
    free(p);
}

static void write_text(const char *rel, const char *text)
{
    char *p = at(rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static bool exists(const char *rel)
{
    char *p = at(rel);
    bool e = access(p, F_OK) == 0;
    free(p);
    return e;
}

typedef struct {
    const char *arch;       /* NULL: no general.architecture */
    int file_type;          /* -1: no general.file_type */
    uint64_t param_count;   /* 0: no general.parameter_count */
    uint32_t ctx_len;       /* 0: no <arch>.context_length */
    bool chat_template;
    enum ggml_type type;    /* of the two tensors */
    uint32_t seed;          /* varies the weights (and so the hash) */
} gguf_spec_t;

/* A GGUF with two 32x4 tensors of spec->type (256 elements). */
static void write_gguf(const char *rel, const gguf_spec_t *s)
{
    struct ggml_init_params ip = { .mem_size = 1 << 20, .mem_buffer = NULL, .no_alloc = false };
    struct ggml_context *ctx = ggml_init(ip);
    struct gguf_context *g = gguf_init_empty();
    if (s->arch)
        gguf_set_val_str(g, "general.architecture", s->arch);
    if (s->file_type >= 0)
        gguf_set_val_u32(g, "general.file_type", (uint32_t)s->file_type);
    if (s->param_count)
        gguf_set_val_u64(g, "general.parameter_count", s->param_count);
    if (s->ctx_len && s->arch) {
        char key[96];
        snprintf(key, sizeof(key), "%s.context_length", s->arch);
        gguf_set_val_u32(g, key, s->ctx_len);
    }
    if (s->chat_template)
        gguf_set_val_str(g, "tokenizer.chat_template", "{{ messages }}");
    for (int i = 0; i < 2; i++) {
        struct ggml_tensor *t = ggml_new_tensor_2d(ctx, s->type, 32, 4);
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        ggml_set_name(t, name);
        unsigned char *d = t->data;
        for (size_t k = 0; k < ggml_nbytes(t); k++)
            d[k] = (unsigned char)(k * 7 + s->seed + (unsigned)i);
        gguf_add_tensor(g, t);
    }
    char *p = at(rel);
    assert_true(gguf_write_to_file(g, p, false));
    free(p);
    gguf_free(g);
    ggml_free(ctx);
}

static const gguf_spec_t LLAMA = { "llama", 15, 0, 4096, true, GGML_TYPE_F32, 0 };

static void copy_file(const char *from_rel, const char *to_rel)
{
    char *cmd = cm_xasprintf("cp '%s/%s' '%s/%s'", g_dir, from_rel, g_dir, to_rel);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* ---- the id rule ---- */

static void test_id_rule(void **state)
{
    (void)state;
    static const struct {
        const char *file, *id, *id_q;
    } cases[] = {
        { "llama-2-7b.Q4_K_M.gguf", "llama-2-7b", "llama-2-7b-Q4_K_M" },
        { "/models/sub/llama-2-7b.Q8_0.gguf", "llama-2-7b", "llama-2-7b-Q8_0" },
        { "tiny-q8_0.gguf", "tiny", "tiny-q8_0" },
        { "tiny-f16.GGUF", "tiny", "tiny-f16" },
        { "Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00003.gguf", "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct-Q4_K_M" },
        { "Qwen2.5-7B-Instruct-Q4_K_M-00003-of-00003.gguf", "Qwen2.5-7B-Instruct", "Qwen2.5-7B-Instruct-Q4_K_M" },
        { "phi-3.IQ2_XS.gguf", "phi-3", "phi-3-IQ2_XS" },
        { "mistral-7b.BF16.gguf", "mistral-7b", "mistral-7b-BF16" },
        { "model.gguf", "model", "model" },
        { "q4_0.gguf", "q4_0", "q4_0" },            /* nothing would be left */
        { "my model (v2).gguf", "my-model--v2-", "my-model--v2-" },
        { ".hidden.gguf", "-hidden", "-hidden" },
        { "x-Q4_K_M-not-a-tag.gguf", "x-Q4_K_M-not-a-tag", "x-Q4_K_M-not-a-tag" },
        { "", "model", "model" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        char *a = rt_model_id_from_file(cases[i].file, false);
        char *b = rt_model_id_from_file(cases[i].file, true);
        if (strcmp(a, cases[i].id) != 0 || strcmp(b, cases[i].id_q) != 0)
            fail_msg("%s: got %s / %s, want %s / %s", cases[i].file, a, b, cases[i].id, cases[i].id_q);
        assert_true(rt_model_id_valid(a));
        free(a);
        free(b);
    }
    /* a very long name is cut to a valid id */
    char longname[600];
    memset(longname, 'a', sizeof(longname) - 6);
    strcpy(longname + sizeof(longname) - 6, ".gguf");
    char *l = rt_model_id_from_file(longname, false);
    assert_int_equal(strlen(l), RT_MODEL_ID_MAX - 1);
    assert_true(rt_model_id_valid(l));
    free(l);
}

static void test_split_and_valid(void **state)
{
    (void)state;
    unsigned p = 0, c = 0;
    assert_true(rt_model_split_part("x-00002-of-00003.gguf", &p, &c));
    assert_int_equal(p, 2);
    assert_int_equal(c, 3);
    assert_true(rt_model_split_part("/d/Q-Q4_K_M-00001-of-00002.gguf", &p, &c));
    assert_int_equal(p, 1);
    assert_int_equal(c, 2);
    assert_false(rt_model_split_part("x.gguf", &p, &c));
    assert_false(rt_model_split_part("x-00004-of-00003.gguf", &p, &c)); /* part past the count */
    assert_false(rt_model_split_part("x-00000-of-00003.gguf", &p, &c));
    assert_false(rt_model_split_part("00001-of-00003.gguf", &p, &c));  /* no name before it */

    assert_true(rt_model_id_valid("llama-2-7b"));
    assert_true(rt_model_id_valid("Qwen2.5_x"));
    assert_false(rt_model_id_valid(""));
    assert_false(rt_model_id_valid(".."));
    assert_false(rt_model_id_valid(".x"));
    assert_false(rt_model_id_valid("a/b"));
    assert_false(rt_model_id_valid("a b"));
    assert_false(rt_model_id_valid("a:b"));
    assert_false(rt_model_id_valid(NULL));
}

/* ---- headers and hashes ---- */

static void test_gguf_info(void **state)
{
    (void)state;
    char err[256];
    rt_gguf_info_t in;
    write_gguf("a.gguf", &LLAMA);
    char *p = at("a.gguf");
    assert_int_equal(rt_gguf_info(p, &in, err, sizeof(err)), 0);
    assert_string_equal(in.architecture, "llama");
    assert_int_equal(in.parameters, 256); /* counted from the tensors */
    assert_int_equal(in.context_length, 4096);
    assert_string_equal(in.quantization, "Q4_K_M"); /* file_type 15 */
    assert_true(in.chat_template);
    free(p);

    /* the header's own count wins; without file_type the tensors' type
     * says; another architecture's context key */
    gguf_spec_t s = { "qwen2", -1, 7000000000ULL, 32768, false, GGML_TYPE_F16, 0 };
    write_gguf("b.gguf", &s);
    p = at("b.gguf");
    assert_int_equal(rt_gguf_info(p, &in, err, sizeof(err)), 0);
    assert_string_equal(in.architecture, "qwen2");
    assert_true(in.parameters == 7000000000ULL);
    assert_int_equal(in.context_length, 32768);
    assert_string_equal(in.quantization, "F16");
    assert_false(in.chat_template);
    free(p);

    /* file types llama.cpp knows by name */
    static const struct { int ft; const char *name; } ft[] = {
        { 0, "F32" }, { 1, "F16" }, { 2, "Q4_0" }, { 7, "Q8_0" }, { 18, "Q6_K" }, { 32, "BF16" },
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(ft); i++) {
        gguf_spec_t t = LLAMA;
        t.file_type = ft[i].ft;
        write_gguf("c.gguf", &t);
        p = at("c.gguf");
        assert_int_equal(rt_gguf_info(p, &in, err, sizeof(err)), 0);
        assert_string_equal(in.quantization, ft[i].name);
        free(p);
    }
}

static void expect_refused(const char *rel, const char *needle)
{
    char err[256] = "";
    rt_gguf_info_t in;
    char *p = at(rel);
    assert_int_equal(rt_gguf_info(p, &in, err, sizeof(err)), -1);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' does not say '%s'", rel, err, needle);
    free(p);
}

static void test_not_gguf(void **state)
{
    (void)state;
    write_text("text.gguf", "this is not a model file, only words that go on for a while\n");
    expect_refused("text.gguf", "not a GGUF file");
    write_text("short.gguf", "GGUF");
    expect_refused("short.gguf", "not a GGUF file");
    /* the magic, version 3, then absurd counts: the reader must refuse
     * without trying to allocate them */
    static const unsigned char hostile[] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f,
                                             0, 0, 0, 0, 0, 0, 0, 0 };
    char *p = at("hostile.gguf");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(hostile, 1, sizeof(hostile), f);
    fclose(f);
    free(p);
    expect_refused("hostile.gguf", "not a GGUF file");
    expect_refused("hostile.gguf", "number of tensors"); /* the reader's own reason, kept */
    /* version 9 */
    static const unsigned char v9[32] = { 'G', 'G', 'U', 'F', 9 };
    p = at("v9.gguf");
    f = fopen(p, "wb");
    fwrite(v9, 1, sizeof(v9), f);
    fclose(f);
    free(p);
    expect_refused("v9.gguf", "unsupported version");
    /* a complete header whose tensor data was cut off (a broken copy) */
    write_gguf("cut.gguf", &LLAMA);
    p = at("cut.gguf");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(truncate(p, sb.st_size - 100), 0);
    free(p);
    expect_refused("cut.gguf", "truncated");
    /* a GGUF that is not a model */
    gguf_spec_t s = LLAMA;
    s.arch = NULL;
    write_gguf("noarch.gguf", &s);
    expect_refused("noarch.gguf", "general.architecture");
    expect_refused("missing.gguf", "cannot open");
}

static void test_sha256(void **state)
{
    (void)state;
    write_text("abc", "abc");
    char hex[RT_SHA256_HEX], err[128];
    uint64_t n = 0;
    char *p = at("abc");
    assert_int_equal(rt_file_sha256(p, hex, &n, err, sizeof(err)), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(n, 3);
    free(p);
    write_text("empty", "");
    p = at("empty");
    assert_int_equal(rt_file_sha256(p, hex, &n, err, sizeof(err)), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    free(p);
}

/* ---- the catalogue ---- */

static rt_store_t *open_store(void)
{
    char *url = at("router.db");
    rt_store_t *st = NULL;
    char err[256] = "";
    if (rt_store_open(url, &st, err, sizeof(err)) != 0)
        fail_msg("store: %s", err);
    free(url);
    return st;
}

static rt_models_t *open_models(rt_store_t *st)
{
    char *dir = at("models");
    rt_models_opts_t o = { .dir = dir };
    char err[256] = "";
    rt_models_t *m = rt_models_new(&o, st, err, sizeof(err));
    if (!m)
        fail_msg("models: %s", err);
    free(dir);
    return m;
}

/* Adds the file at rel (relative to g_dir); returns rt_models_add's status. */
static int add_file(rt_models_t *m, const char *rel, const char *id, char id_out[RT_MODEL_ID_MAX], char *err,
                    size_t errlen)
{
    char *p = at(rel);
    rt_model_file_t f = { .path = p };
    rt_model_rec_t rec = { .files = &f, .nfiles = 1, .id = (char *)id };
    int rc = rt_models_add(m, &rec, id_out, err, errlen);
    free(p);
    return rc;
}

static void test_add_unique_persist_remove(void **state)
{
    (void)state;
    mkdirs("models/tiny");
    mkdirs("elsewhere");
    gguf_spec_t s = LLAMA;
    write_gguf("models/tiny/tiny-q8_0.gguf", &s);
    s.seed = 1;
    write_gguf("models/tiny-f16.gguf", &s);
    s.seed = 2;
    write_gguf("elsewhere/tiny-f16.gguf", &s);
    write_text("models/junk.gguf", "not a model at all, just text that is long enough");

    rt_store_t *st = open_store();
    rt_models_t *m = open_models(st);
    uint64_t v0 = rt_models_version(m);
    char id[RT_MODEL_ID_MAX], err[512];
    assert_int_equal(add_file(m, "models/tiny/tiny-q8_0.gguf", NULL, id, err, sizeof(err)), 0);
    assert_string_equal(id, "tiny");
    assert_true(rt_models_version(m) > v0);
    uint64_t v1 = rt_models_version(m);
    /* another quantisation of the same model keeps its tag */
    assert_int_equal(add_file(m, "models/tiny-f16.gguf", NULL, id, err, sizeof(err)), 0);
    assert_string_equal(id, "tiny-f16");
    /* the same name again (elsewhere, registered in place): numbered */
    assert_int_equal(add_file(m, "elsewhere/tiny-f16.gguf", NULL, id, err, sizeof(err)), 0);
    assert_string_equal(id, "tiny-f16-2");
    assert_true(rt_models_version(m) > v1);
    /* the same file twice: the existing id, nothing added */
    uint64_t v2 = rt_models_version(m);
    assert_int_equal(add_file(m, "models/tiny-f16.gguf", NULL, id, err, sizeof(err)), RT_MODELS_EXISTS);
    assert_string_equal(id, "tiny-f16");
    assert_int_equal(rt_models_version(m), v2);
    /* not a GGUF: refused, nothing added */
    assert_int_equal(add_file(m, "models/junk.gguf", NULL, id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a GGUF file"));
    assert_int_equal(rt_models_version(m), v2);
    /* an id asked for must be valid */
    assert_int_equal(add_file(m, "models/tiny/tiny-q8_0.gguf", "../etc", id, err, sizeof(err)), -1);

    rt_model_rec_t r;
    assert_true(rt_models_get(m, "tiny", &r));
    assert_int_equal(r.nfiles, 1);
    assert_string_equal(r.files[0].name, "tiny-q8_0.gguf");
    assert_int_equal(strlen(r.files[0].sha256), 64);
    char hex[RT_SHA256_HEX];
    assert_int_equal(rt_file_sha256(r.files[0].path, hex, NULL, err, sizeof(err)), 0);
    assert_string_equal(r.files[0].sha256, hex);
    struct stat sb;
    assert_int_equal(stat(r.files[0].path, &sb), 0);
    assert_int_equal(r.size, (uint64_t)sb.st_size);
    assert_string_equal(r.info.architecture, "llama");
    assert_string_equal(r.info.quantization, "Q4_K_M");
    char sha_tiny[RT_SHA256_HEX];
    strcpy(sha_tiny, hex);
    rt_model_rec_clear(&r);
    assert_false(rt_models_get(m, "nope", &r));

    /* persisted: a new catalogue over a reopened store has the same rows */
    rt_models_free(m);
    rt_store_close(st);
    st = open_store();
    m = open_models(st);
    rt_model_rec_t *v;
    size_t n = rt_models_list(m, &v);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].id, "tiny");
    assert_string_equal(v[0].files[0].sha256, sha_tiny);
    assert_string_equal(v[0].info.architecture, "llama");
    assert_int_equal(v[0].info.context_length, 4096);
    assert_true(v[0].info.chat_template);
    assert_string_equal(v[1].id, "tiny-f16");
    assert_string_equal(v[2].id, "tiny-f16-2");
    rt_model_recs_free(v, n);

    /* remove: the files inside the models directory go (and their emptied
     * directory), a file registered in place elsewhere stays */
    uint64_t v3 = rt_models_version(m);
    assert_int_equal(rt_models_remove(m, "tiny", err, sizeof(err)), 0);
    assert_false(exists("models/tiny/tiny-q8_0.gguf"));
    assert_false(exists("models/tiny"));
    assert_true(exists("models"));
    assert_true(rt_models_version(m) > v3);
    assert_int_equal(rt_models_remove(m, "tiny-f16-2", err, sizeof(err)), 0);
    assert_true(exists("elsewhere/tiny-f16.gguf"));
    assert_int_equal(rt_models_remove(m, "tiny-f16-2", err, sizeof(err)), 1);
    assert_int_equal(rt_models_remove(m, "nope", err, sizeof(err)), 1);
    /* the freed base id is given again */
    assert_int_equal(add_file(m, "elsewhere/tiny-f16.gguf", NULL, id, err, sizeof(err)), 0);
    assert_string_equal(id, "tiny");

    rt_models_free(m);
    rt_store_close(st);
    st = open_store();
    m = open_models(st);
    n = rt_models_list(m, &v);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "tiny-f16");
    assert_string_equal(v[1].id, "tiny");
    rt_model_recs_free(v, n);
    rt_models_free(m);
    rt_store_close(st);
}

static void test_json(void **state)
{
    (void)state;
    mkdirs("models/sp");
    write_gguf("models/sp/sp-Q8_0-00001-of-00002.gguf", &LLAMA);
    write_text("models/sp/sp-Q8_0-00002-of-00002.gguf", "the second part's bytes");
    rt_models_t *m = open_models(NULL);
    char *p1 = at("models/sp/sp-Q8_0-00001-of-00002.gguf"), *p2 = at("models/sp/sp-Q8_0-00002-of-00002.gguf");
    rt_model_file_t f[2] = { { .path = p1 }, { .path = p2 } };
    rt_model_rec_t rec = { .files = f, .nfiles = 2, .source_repo = "org/sp-GGUF", .source_file = "sp-Q8_0-00001-of-00002.gguf" };
    char id[RT_MODEL_ID_MAX], err[256];
    assert_int_equal(rt_models_add(m, &rec, id, err, sizeof(err)), 0);
    assert_string_equal(id, "sp");
    rt_model_rec_t r;
    assert_true(rt_models_get(m, "sp", &r));

    cJSON *o = rt_model_json(&r, false);
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring, "sp");
    assert_string_equal(cJSON_GetObjectItem(o, "object")->valuestring, "model");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "registered")));
    assert_string_equal(cJSON_GetObjectItem(o, "sha256")->valuestring, r.files[0].sha256);
    assert_int_equal((uint64_t)cJSON_GetObjectItem(o, "size")->valuedouble, r.files[0].size + r.files[1].size);
    cJSON *src = cJSON_GetObjectItem(o, "source");
    assert_string_equal(cJSON_GetObjectItem(src, "repo")->valuestring, "org/sp-GGUF");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(src, "revision")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "info"), "quantization")->valuestring, "Q4_K_M");
    assert_null(cJSON_GetObjectItem(o, "path"));
    assert_null(cJSON_GetObjectItem(o, "files"));
    cJSON_Delete(o);

    o = rt_model_json(&r, true);
    assert_string_equal(cJSON_GetObjectItem(o, "path")->valuestring, r.files[0].path);
    assert_string_equal(cJSON_GetObjectItem(o, "blob_url")->valuestring, "/api/models/blob/sp");
    cJSON *files = cJSON_GetObjectItem(o, "files");
    assert_int_equal(cJSON_GetArraySize(files), 2);
    cJSON *f1 = cJSON_GetArrayItem(files, 1);
    assert_string_equal(cJSON_GetObjectItem(f1, "name")->valuestring, "sp-Q8_0-00002-of-00002.gguf");
    assert_string_equal(cJSON_GetObjectItem(f1, "blob_url")->valuestring,
                        "/api/models/blob/sp/sp-Q8_0-00002-of-00002.gguf");
    assert_string_equal(cJSON_GetObjectItem(f1, "sha256")->valuestring, r.files[1].sha256);
    cJSON_Delete(o);
    rt_model_rec_clear(&r);

    /* the list helper fills ready_nodes from the caller's count */
    cJSON *a = cJSON_CreateArray();
    assert_int_equal(rt_models_append_json(m, a, false, "nope", NULL, NULL), 0);
    assert_int_equal(rt_models_append_json(m, a, false, NULL, NULL, NULL), 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "ready_nodes")->valueint, 0);
    cJSON_Delete(a);
    rt_models_free(m);
    free(p1);
    free(p2);
}

static const char *skipped_reason(const cJSON *skipped, const char *file_suffix)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, skipped) {
        const char *f = cJSON_GetObjectItem(s, "file")->valuestring;
        size_t n = strlen(f), k = strlen(file_suffix);
        if (n >= k && strcmp(f + n - k, file_suffix) == 0)
            return cJSON_GetObjectItem(s, "reason")->valuestring;
    }
    return NULL;
}

static bool registered_id(const cJSON *reg, const char *id)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, reg)
        if (strcmp(cJSON_GetObjectItem(s, "id")->valuestring, id) == 0)
            return true;
    return false;
}

static void test_discover(void **state)
{
    (void)state;
    mkdirs("models/one");
    mkdirs("models/split");
    mkdirs("models/two");
    mkdirs("models/one/deeper");
    gguf_spec_t s = LLAMA;
    write_gguf("models/top.Q8_0.gguf", &s);
    s.seed = 1;
    write_gguf("models/one/whatever-q8_0.gguf", &s);                    /* the subdirectory's name */
    s.seed = 2;
    write_gguf("models/one/deeper/deep.gguf", &s);                       /* too deep: not looked at */
    s.seed = 3;
    write_gguf("models/split/big-Q4_K_M-00001-of-00002.gguf", &s);
    write_text("models/split/big-Q4_K_M-00002-of-00002.gguf", "part two");
    s.seed = 4;
    write_gguf("models/two/a.gguf", &s);                                 /* two models: their own ids */
    s.seed = 5;
    write_gguf("models/two/b.gguf", &s);
    write_text("models/orphan-00002-of-00002.gguf", "a part without its first");
    s.seed = 6;
    write_gguf("models/gap-00001-of-00003.gguf", &s);
    write_text("models/gap-00003-of-00003.gguf", "the third part; the second is missing");
    write_text("models/junk.gguf", "text, not a model, long enough for a header");
    write_text("models/README.txt", "ignored");
    copy_file("models/top.Q8_0.gguf", "models/.hidden.gguf");
    copy_file("models/top.Q8_0.gguf", "models/dl.gguf.part");

    rt_models_t *m = open_models(NULL);
    cJSON *reg = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    char err[256];
    uint64_t v0 = rt_models_version(m);
    assert_int_equal(rt_models_discover(m, NULL, reg, skipped, err, sizeof(err)), 0);
    char *dump = cJSON_Print(skipped);
    assert_int_equal(cJSON_GetArraySize(reg), 5);
    assert_true(registered_id(reg, "top"));
    assert_true(registered_id(reg, "one"));
    assert_true(registered_id(reg, "split")); /* the one model of models/split/ */
    assert_true(registered_id(reg, "a"));
    assert_true(registered_id(reg, "b"));
    assert_true(rt_models_version(m) > v0);
    const char *why;
    assert_non_null(why = skipped_reason(skipped, "orphan-00002-of-00002.gguf"));
    assert_non_null(strstr(why, "without its first part"));
    assert_non_null(why = skipped_reason(skipped, "gap-00001-of-00003.gguf"));
    assert_non_null(strstr(why, "part 2 of 3 is missing"));
    assert_non_null(why = skipped_reason(skipped, "junk.gguf"));
    assert_non_null(strstr(why, "not a GGUF file"));
    assert_null(skipped_reason(skipped, "README.txt"));
    assert_null(skipped_reason(skipped, ".hidden.gguf"));
    assert_null(skipped_reason(skipped, "deep.gguf"));
    free(dump);
    rt_model_rec_t r;
    assert_true(rt_models_get(m, "split", &r));
    assert_int_equal(r.nfiles, 2);
    assert_string_equal(r.files[0].name, "big-Q4_K_M-00001-of-00002.gguf");
    assert_string_equal(r.files[1].name, "big-Q4_K_M-00002-of-00002.gguf");
    rt_model_rec_clear(&r);
    assert_false(rt_models_get(m, "deep", &r));
    cJSON_Delete(reg);
    cJSON_Delete(skipped);

    /* again: everything is already registered, nothing changes */
    uint64_t v1 = rt_models_version(m);
    reg = cJSON_CreateArray();
    skipped = cJSON_CreateArray();
    assert_int_equal(rt_models_discover(m, NULL, reg, skipped, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(reg), 0);
    assert_non_null(why = skipped_reason(skipped, "top.Q8_0.gguf"));
    assert_non_null(strstr(why, "already registered as 'top'"));
    assert_int_equal(rt_models_version(m), v1);
    cJSON_Delete(reg);
    cJSON_Delete(skipped);

    /* another directory, registered in place */
    mkdirs("outside");
    write_gguf("outside/ext.Q4_0.gguf", &LLAMA); /* same bytes as top: a different path */
    reg = cJSON_CreateArray();
    skipped = cJSON_CreateArray();
    char *out = at("outside");
    assert_int_equal(rt_models_discover(m, out, reg, skipped, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(reg), 1);
    assert_true(registered_id(reg, "ext"));
    assert_int_equal(rt_models_remove(m, "ext", err, sizeof(err)), 0);
    assert_true(exists("outside/ext.Q4_0.gguf")); /* never ours to delete */
    cJSON_Delete(reg);
    cJSON_Delete(skipped);
    /* not a directory */
    char *nd = at("outside/ext.Q4_0.gguf");
    assert_int_equal(rt_models_discover(m, nd, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a directory"));
    free(nd);
    free(out);
    rt_models_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_rule),
        cmocka_unit_test(test_split_and_valid),
        cmocka_unit_test_setup_teardown(test_gguf_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_gguf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_unique_persist_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
