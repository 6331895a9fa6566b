/* tools/mkgguf: every type of the tiny and demo presets loads in llama.cpp,
 * tokenizes like SentencePiece, formats ChatML and generates tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ggml-backend.h>
#include <llama.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

static void quiet_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

static bool no_progress(float p, void *ud)
{
    (void)p;
    (void)ud;
    return true;
}

static void make(const char *preset, const char *type, const char *seed, char *path, size_t n)
{
    snprintf(path, n, "%s/%s-%s-%s.gguf", g_dir, preset, type, seed);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s --preset %s --type %s --seed %s -o %s", MKGGUF_PATH, preset,
             type, seed, path);
    assert_int_equal(system(cmd), 0);
}

static struct llama_model *load(const char *path)
{
    struct llama_model_params mp = llama_model_default_params();
    mp.progress_callback = no_progress;
    struct llama_model *m = llama_model_load_from_file(path, mp);
    assert_non_null(m);
    return m;
}

/* Greedy generation of n tokens after a short prompt. */
static void generate(struct llama_model *m, int n, llama_token *out)
{
    const struct llama_vocab *v = llama_model_get_vocab(m);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_threads = cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(m, cp);
    assert_non_null(ctx);
    llama_token toks[64];
    const char *prompt = "Hello world, the model";
    int nt = llama_tokenize(v, prompt, (int)strlen(prompt), toks, 64, true, false);
    assert_true(nt > 1);
    struct llama_sampler *smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
    struct llama_batch b = llama_batch_get_one(toks, nt);
    for (int i = 0; i < n; i++) {
        assert_int_equal(llama_decode(ctx, b), 0);
        out[i] = llama_sampler_sample(smpl, ctx, -1);
        assert_true(out[i] >= 0 && out[i] < llama_vocab_n_tokens(v));
        b = llama_batch_get_one(&out[i], 1);
    }
    llama_sampler_free(smpl);
    llama_free(ctx);
}

static void check_vocab(struct llama_model *m)
{
    const struct llama_vocab *v = llama_model_get_vocab(m);
    assert_int_equal(llama_vocab_type(v), LLAMA_VOCAB_TYPE_SPM);
    llama_token t[32];
    int n = llama_tokenize(v, "<|im_start|>user", 16, t, 32, false, true);
    assert_true(n >= 2);
    assert_string_equal(llama_vocab_get_text(v, t[0]), "<|im_start|>");
    assert_true(llama_vocab_is_control(v, t[0]));
    n = llama_tokenize(v, "<|im_end|>", 10, t, 32, false, true);
    assert_int_equal(n, 1);
    assert_true(llama_vocab_is_eog(v, t[0]));
    /* words merge into whole tokens; no space prefix is added */
    n = llama_tokenize(v, "hello world", 11, t, 32, false, false);
    assert_int_equal(n, 2);
    assert_string_equal(llama_vocab_get_text(v, t[0]), "hello");
    assert_string_equal(llama_vocab_get_text(v, t[1]), "\xE2\x96\x81world");
    /* characters outside the vocabulary fall back to byte tokens */
    n = llama_tokenize(v, "\xC3\xA9", 2, t, 32, false, false);
    assert_int_equal(n, 2);
    assert_int_equal(llama_vocab_get_attr(v, t[0]) & LLAMA_TOKEN_ATTR_BYTE, LLAMA_TOKEN_ATTR_BYTE);
    const char *tmpl = llama_model_chat_template(m, NULL);
    assert_non_null(tmpl);
    struct llama_chat_message msg = { "user", "hi" };
    char buf[256];
    int len = llama_chat_apply_template(tmpl, &msg, 1, true, buf, sizeof(buf));
    assert_true(len > 0 && len < (int)sizeof(buf));
    buf[len] = '\0';
    assert_string_equal(buf, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

static void preset_all_types(const char *preset)
{
    static const char *types[] = { "f32", "f16", "q8_0", "q4_0" };
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        make(preset, types[i], "42", path, sizeof(path));
        struct llama_model *m = load(path);
        check_vocab(m);
        llama_token a[8];
        generate(m, 8, a);
        llama_model_free(m);
        unlink(path);
    }
}

static void test_tiny(void **state)
{
    (void)state;
    preset_all_types("tiny");
    struct stat st;
    char path[512];
    make("tiny", "q8_0", "1", path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < 1024 * 1024); /* a few hundred KB */
    unlink(path);
}

static void test_demo(void **state)
{
    (void)state;
    preset_all_types("demo");
}

static void test_deterministic(void **state)
{
    (void)state;
    char p1[512], p2[512], p3[512], cmd[2048];
    make("tiny", "q4_0", "7", p1, sizeof(p1));
    snprintf(p2, sizeof(p2), "%s/copy.gguf", g_dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s", p1, p2);
    assert_int_equal(system(cmd), 0);
    make("tiny", "q4_0", "7", p1, sizeof(p1));
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", p1, p2);
    assert_int_equal(system(cmd), 0);
    make("tiny", "q4_0", "8", p3, sizeof(p3));
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", p1, p3);
    assert_int_not_equal(system(cmd), 0);
    /* different seeds generate different tokens */
    llama_token a[8], b[8];
    struct llama_model *m = load(p1);
    generate(m, 8, a);
    llama_model_free(m);
    m = load(p3);
    generate(m, 8, b);
    llama_model_free(m);
    assert_true(memcmp(a, b, sizeof(a)) != 0);
    unlink(p1);
    unlink(p2);
    unlink(p3);
}

static void test_bad_args(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s --preset nope -o %s/x.gguf 2>/dev/null", MKGGUF_PATH, g_dir);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s --preset tiny --type q5_k -o %s/x.gguf 2>/dev/null", MKGGUF_PATH, g_dir);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s --preset tiny --n-embd 48 -o %s/x.gguf 2>/dev/null", MKGGUF_PATH, g_dir);
    assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
    setenv("GGML_NO_BACKTRACE", "1", 1);
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_mkgguf.XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    llama_log_set(quiet_log, NULL);
    const char *libdir = getenv("LLMR_LLAMA_LIB_DIR");
    ggml_backend_load_all_from_path(libdir ? libdir : LLAMA_LIB_DIR);
    llama_backend_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_demo),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_args),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    llama_backend_free();
    rmdir(g_dir);
    return rc;
}
