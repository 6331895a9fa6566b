/* models_gguf: what a file says about itself: the GGUF header through
 * ggml's gguf reader (rt_gguf_info) and the SHA-256 of the bytes
 * (rt_file_sha256). Both block on the disk: callers run them off the loops. */
#include "models/models.h"

#include "log.h"
#include "sha256.h"
#include "util.h"

#include <gguf.h>
#include <ggml.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* magic, version, tensor count, key/value count: the smallest GGUF */
#define GGUF_MIN_HEADER 24
/* Bytes read per call while hashing: large enough that the syscalls do not
 * matter, small enough to sit on a pool thread's heap. */
#define HASH_CHUNK (1u << 20)

/* general.file_type (llama.h's enum llama_ftype) -> the name the files and
 * the Hub use. Gaps are values llama.cpp removed. */
static const char *const ftype_names[] = {
    [0] = "F32",      [1] = "F16",      [2] = "Q4_0",     [3] = "Q4_1",     [7] = "Q8_0",
    [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",    [11] = "Q3_K_S",  [12] = "Q3_K_M",
    [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M",  [16] = "Q5_K_S",  [17] = "Q5_K_M",
    [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",  [21] = "Q2_K_S",  [22] = "IQ3_XS",
    [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",  [26] = "IQ3_S",   [27] = "IQ3_M",
    [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",  [31] = "IQ1_M",   [32] = "BF16",
    [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE", [39] = "NVFP4", [40] = "Q1_0",
    [41] = "Q2_0",
};

/* An integer-typed value of any width; false when key is absent or not an
 * integer (a hostile file may store anything under any key). */
static bool get_uint(const struct gguf_context *g, const char *key, uint64_t *out)
{
    int64_t k = gguf_find_key(g, key);
    if (k < 0)
        return false;
    switch (gguf_get_kv_type(g, k)) {
    case GGUF_TYPE_UINT8: *out = gguf_get_val_u8(g, k); return true;
    case GGUF_TYPE_UINT16: *out = gguf_get_val_u16(g, k); return true;
    case GGUF_TYPE_UINT32: *out = gguf_get_val_u32(g, k); return true;
    case GGUF_TYPE_UINT64: *out = gguf_get_val_u64(g, k); return true;
    case GGUF_TYPE_INT8: *out = (uint64_t)(gguf_get_val_i8(g, k) < 0 ? 0 : gguf_get_val_i8(g, k)); return true;
    case GGUF_TYPE_INT16: *out = (uint64_t)(gguf_get_val_i16(g, k) < 0 ? 0 : gguf_get_val_i16(g, k)); return true;
    case GGUF_TYPE_INT32: *out = (uint64_t)(gguf_get_val_i32(g, k) < 0 ? 0 : gguf_get_val_i32(g, k)); return true;
    case GGUF_TYPE_INT64: *out = (uint64_t)(gguf_get_val_i64(g, k) < 0 ? 0 : gguf_get_val_i64(g, k)); return true;
    default: return false;
    }
}

static const char *get_str(const struct gguf_context *g, const char *key)
{
    int64_t k = gguf_find_key(g, key);
    return k >= 0 && gguf_get_kv_type(g, k) == GGUF_TYPE_STRING ? gguf_get_val_str(g, k) : NULL;
}

static void copy_upper(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        dst[i] = (char)toupper((unsigned char)s[i]);
    dst[i] = '\0';
}

/* The tensors: their elements summed (the parameter count when the header
 * has none), the type holding the most bytes (the quantisation when
 * general.file_type is absent), and whether every tensor's data lies inside
 * the file (a truncated download has a complete header and missing data). */
static int scan_tensors(const struct gguf_context *g, uint64_t file_size, uint64_t *params,
                        char *quant, size_t qcap, char *err, size_t errlen)
{
    uint64_t bytes_by_type[GGML_TYPE_COUNT] = { 0 };
    uint64_t data = gguf_get_data_offset(g), sum = 0;
    int64_t n = gguf_get_n_tensors(g);
    for (int64_t i = 0; i < n; i++) {
        uint64_t off = gguf_get_tensor_offset(g, i), size = gguf_get_tensor_size(g, i);
        if (data > file_size || off > file_size - data || size > file_size - data - off) {
            snprintf(err, errlen, "not a GGUF file: truncated (tensor '%s' ends past the end of the file)",
                     gguf_get_tensor_name(g, i));
            return -1;
        }
        const int64_t *ne = gguf_get_tensor_ne(g, i);
        uint64_t e = 1;
        for (int d = 0; d < GGML_MAX_DIMS; d++)
            e *= ne[d] > 0 ? (uint64_t)ne[d] : 1;
        sum += e;
        enum ggml_type t = gguf_get_tensor_type(g, i);
        if ((int)t >= 0 && t < GGML_TYPE_COUNT)
            bytes_by_type[t] += size;
    }
    *params = sum;
    int best = -1;
    for (int t = 0; t < GGML_TYPE_COUNT; t++)
        if (bytes_by_type[t] && (best < 0 || bytes_by_type[t] > bytes_by_type[best]))
            best = t;
    if (best >= 0 && ggml_type_name((enum ggml_type)best))
        copy_upper(quant, qcap, ggml_type_name((enum ggml_type)best));
    return 0;
}

/* ggml's reader says why it refused a file through ggml's log (stderr by
 * default). The router routes that log here once: while rt_gguf_info runs
 * on this thread its last message is kept for the error it returns (the
 * user then reads "number of tensors is ... but must be in ..."), anything
 * else goes to the debug log. */
static _Thread_local char *t_reason;  /* capture buffer, NULL: not capturing */
static _Thread_local size_t t_reason_cap;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void on_ggml_log(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    size_t n = strcspn(text, "\n");
    if (n == 0)
        return; /* a bare newline or a continuation */
    if (t_reason && level >= GGML_LOG_LEVEL_WARN && !t_reason[0]) {
        snprintf(t_reason, t_reason_cap, "%.*s", (int)n, text);
        return;
    }
    LOG_DEBUG("gguf", "%.*s", (int)n, text);
}

static void set_log(void) { ggml_log_set(on_ggml_log, NULL); }

int rt_gguf_info(const char *path, rt_gguf_info_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = -1;
    struct gguf_context *g = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* Our own checks first, so that garbage never reaches the reader: a
     * regular file, long enough for a header, the magic, a version ggml
     * reads. */
    struct stat sb;
    unsigned char head[8];
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "not a GGUF file: not a regular file");
        goto out;
    }
    if (sb.st_size < GGUF_MIN_HEADER) {
        snprintf(err, errlen, "not a GGUF file: %lld bytes is too short for a header", (long long)sb.st_size);
        goto out;
    }
    if (fread(head, 1, sizeof(head), f) != sizeof(head) || memcmp(head, "GGUF", 4) != 0) {
        snprintf(err, errlen, "not a GGUF file: no GGUF magic");
        goto out;
    }
    uint32_t version = (uint32_t)head[4] | (uint32_t)head[5] << 8 | (uint32_t)head[6] << 16 | (uint32_t)head[7] << 24;
    if (version < 2 || version > 3) {
        snprintf(err, errlen, "not a GGUF file: unsupported version %u", version);
        goto out;
    }
    rewind(f);
    /* the same open file as the checks above (no swap in between);
     * no_alloc and no ggml context: the metadata only, no tensor data */
    struct gguf_init_params gp = { .no_alloc = true, .ctx = NULL };
    char reason[256] = "";
    pthread_once(&log_once, set_log);
    t_reason = reason;
    t_reason_cap = sizeof(reason);
    g = gguf_init_from_file_ptr(f, gp);
    t_reason = NULL;
    if (!g) {
        snprintf(err, errlen, "not a GGUF file: the header is malformed or truncated%s%s%s",
                 reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
        goto out;
    }
    uint64_t params = 0;
    if (scan_tensors(g, (uint64_t)sb.st_size, &params, out->quantization, sizeof(out->quantization), err,
                     errlen) != 0)
        goto out;
    const char *arch = get_str(g, "general.architecture");
    if (!arch || !*arch) {
        snprintf(err, errlen, "not a GGUF model: general.architecture is missing");
        goto out;
    }
    snprintf(out->architecture, sizeof(out->architecture), "%s", arch);
    uint64_t v;
    out->parameters = get_uint(g, "general.parameter_count", &v) && v ? v : params;
    char key[128];
    snprintf(key, sizeof(key), "%s.context_length", out->architecture);
    if (get_uint(g, key, &v))
        out->context_length = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    if (get_uint(g, "general.file_type", &v) && v < CM_ARRAY_LEN(ftype_names) && ftype_names[v])
        snprintf(out->quantization, sizeof(out->quantization), "%s", ftype_names[v]);
    out->chat_template = get_str(g, "tokenizer.chat_template") != NULL;
    rc = 0;
out:
    gguf_free(g);
    fclose(f);
    return rc;
}

int rt_file_sha256(const char *path, char hex[RT_SHA256_HEX], uint64_t *size, char *err, size_t errlen)
{
    int rc = -1;
    unsigned char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    cm_sha256_t st;
    cm_sha256_init(&st);
    buf = cm_xmalloc(HASH_CHUNK);
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, HASH_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        cm_sha256_update(&st, buf, (size_t)r);
        total += (uint64_t)r;
    }
    unsigned char md[CM_SHA256_BYTES];
    cm_sha256_final(&st, md);
    sodium_bin2hex(hex, RT_SHA256_HEX, md, sizeof(md));
    if (size)
        *size = total;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
