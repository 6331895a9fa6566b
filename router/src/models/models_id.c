/* models_id: a model's id from its file name (rt_model_id_from_file).
 *
 * The rule (README "Models"), applied in this order:
 *   1. the directory and a ".gguf" suffix (any case) are dropped;
 *   2. a split suffix "-00001-of-00003" is dropped (every part of a split
 *      GGUF gives the same id);
 *   3. a trailing quantisation tag after the last '.' or '-' is dropped
 *      (Q4_K_M, Q8_0, q4_0, IQ2_XS, Q4_0_4_4, F16, BF16, F32, FP16, FP32),
 *      unless nothing would be left: "llama-2-7b.Q4_K_M.gguf" ->
 *      "llama-2-7b", "q4_0.gguf" -> "q4_0";
 *   4. characters other than [A-Za-z0-9._-] become '-' (an id is what a
 *      client sends as "model" and part of the blob URL), and the id is cut
 *      to RT_MODEL_ID_MAX - 1 bytes; a leading '.' becomes '-' too, and an
 *      empty result is "model".
 * Steps 1 and 3 are the node's rule (node/src/models.c
 * nd_model_id_from_file), copied here because router and node never include
 * each other: a node that finds "llama-2-7b.Q4_K_M.gguf" in its own
 * directory calls it what the router does. When the id is taken by another
 * model, rt_models_add asks again with unique_with_quant (the tag is kept,
 * joined by '-': "llama-2-7b-Q8_0"), then appends "-2", "-3", ... */
#include "models/models.h"

#include "model_name.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Length of a trailing "-NNNNN-of-NNNNN" in s[0..n), 0 when there is none. */
static size_t split_suffix_len(const char *s, size_t n)
{
    /* digits, "-of-", digits, '-' from the end */
    size_t i = n, d2 = 0, d1 = 0;
    while (i > 0 && isdigit((unsigned char)s[i - 1]))
        i--, d2++;
    if (d2 == 0 || i < 4 || strncasecmp(s + i - 4, "-of-", 4) != 0)
        return 0;
    i -= 4;
    while (i > 0 && isdigit((unsigned char)s[i - 1]))
        i--, d1++;
    if (d1 == 0 || i == 0 || s[i - 1] != '-')
        return 0;
    return n - (i - 1);
}

bool rt_model_split_part(const char *file, unsigned *part, unsigned *count)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (n > 5 && strcasecmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    size_t k = split_suffix_len(base, n);
    if (k == 0)
        return false;
    /* "-00001-of-00003": two numbers of at most 5 digits in practice */
    char buf[64];
    if (k >= sizeof(buf))
        return false;
    memcpy(buf, base + n - k, k);
    buf[k] = '\0';
    char *end;
    unsigned long a = strtoul(buf + 1, &end, 10);
    if (strncasecmp(end, "-of-", 4) != 0)
        return false;
    unsigned long b = strtoul(end + 4, &end, 10);
    if (*end || a == 0 || b == 0 || a > b || b > 99999)
        return false;
    *part = (unsigned)a;
    *count = (unsigned)b;
    return true;
}

char *rt_model_id_from_file(const char *file, bool unique_with_quant)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (n > 5 && strcasecmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    n -= split_suffix_len(base, n);
    char *id = cm_xstrndup(base, n);
    /* the last '.' or '-' (not the first character) followed by a tag */
    for (char *p = id + strlen(id); p > id; p--) {
        if (p[-1] != '.' && p[-1] != '-')
            continue;
        if (p - 1 > id && cm_model_quant_tag(p)) {
            if (unique_with_quant)
                p[-1] = '-';
            else
                p[-1] = '\0';
        }
        break;
    }
    for (char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            *p = '-';
    if (id[0] == '.') /* never ".", ".." or a hidden name in a URL or a path */
        id[0] = '-';
    if (strlen(id) >= RT_MODEL_ID_MAX)
        id[RT_MODEL_ID_MAX - 1] = '\0';
    if (!*id) {
        free(id);
        id = cm_xstrdup("model");
    }
    return id;
}

bool rt_model_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= RT_MODEL_ID_MAX || id[0] == '.')
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}
