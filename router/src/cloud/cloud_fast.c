/* cloud_fast: the common stream events without a cJSON tree.
 *
 * A translated stream is mostly one event shape repeated: Anthropic's
 * content_block_delta (a text or a tool's argument bytes) and Gemini's
 * candidate of text parts with usage. Through cJSON each costs a tree (a
 * malloc per node and per string), strtod for every count and strcmp
 * lookups: several times the cost of the OpenAI passthrough per event
 * (bench/router/cloud_translate_bench.c). Here the event is tokenized by
 * jsmn into a fixed array on the stack and read in place, and a text goes
 * out in its JSON form as the provider sent it (emit_text_raw): no
 * allocation, no decoding.
 *
 * The rule is that the fast path never decides anything the cJSON path
 * would decide differently: it answers FAST_NO for whatever it does not
 * know for sure (an error, a finish without content, a key it does not
 * know, a null, a float, a duplicate key, more than FAST_TOKENS tokens...)
 * and the cJSON handler runs on the same event. What it takes it checks as
 * cm_json_parse would:
 *   - the bytes: cm_json_bytes_ok, the same function cm_json_parse runs;
 *   - the grammar: jsmn, even in strict mode, lets through missing or extra
 *     commas and colons, several top-level values and primitives such as
 *     "tru" or "1.2.3"; walk() re-reads the bytes between the tokens and
 *     every primitive, so an event is taken only when it is one JSON
 *     document cJSON would parse too;
 *   - the strings: jsmn checks the escape letters and the hex digits, not
 *     the surrogates; cJSON refuses a lone surrogate, so does
 *     escapes_ok();
 *   - the numbers it reads (an index, a token count): digits only, at most
 *     15 of them (exact as a double, under get_count's 2^53).
 * tests/unit/router/cloud/test_cloud_fast.c feeds many streams, hostile
 * ones included, with the fast path on and off and compares the results.
 *
 * Why jsmn and not a hand-written scanner: the tokenizer is the part worth
 * sharing (STYLE.md 9); what is added here is only the strictness cJSON
 * has and jsmn lacks. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "cloud/cloud_int.h"

#include "json.h"
#include "util.h"

#include <string.h>

/* The common events take 10 (Anthropic) to about 40 tokens (Gemini's last
 * event with usage details): 64 on the stack; more is not a common event. */
#define FAST_TOKENS 64
#define MAX_DIGITS 15
#define ARGS_MAX 1024 /* a tool's argument bytes decoded on the stack; more: the cJSON path */

static bool fast_on = true;

void rt_cloud_fast_enable(bool on) { fast_on = on; }

/* ------------------------------------------------------------ the document */

typedef struct {
    const char *js;
    size_t len;
    int ntok;
    jsmntok_t tok[FAST_TOKENS];
    int after[FAST_TOKENS]; /* the index of the first token after token i's subtree */
} doc_t;

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The \u escapes of the document p[0..n) (jsmn checked every escape's
 * letter and hex digits) pair their surrogates as cJSON requires: a high
 * one right before a low one, never a low one alone. One scan for the whole
 * document: a backslash stands only in a string (walk() made sure) and
 * each escape is stepped over whole, so every one found starts an escape. */
static bool escapes_ok(const char *p, size_t n)
{
    const char *end = p + n;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p < 2)
            return false;
        if (p[1] != 'u') {
            p += 2;
            continue;
        }
        int hi = end - p >= 6 ? hex4(p + 2) : -1;
        if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
            return false;
        if (hi < 0xD800 || hi > 0xDBFF) {
            p += 6;
            continue;
        }
        int lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return false;
        p += 12;
    }
    return true;
}

/* true, false, null or a number in RFC 8259's grammar (a subset of what
 * cJSON reads) no longer than 32 bytes (cJSON reads a number's first 63
 * bytes only) */
static bool primitive_ok(const char *p, size_t n)
{
    if (n == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0))
        return true;
    if (n == 5 && memcmp(p, "false", 5) == 0)
        return true;
    if (n == 0 || n > 32)
        return false;
    size_t i = p[0] == '-';
#define DIGITS(min)                                                                                                    \
    do {                                                                                                               \
        size_t from_ = i;                                                                                              \
        while (i < n && p[i] >= '0' && p[i] <= '9')                                                                    \
            i++;                                                                                                       \
        if (i - from_ < (min))                                                                                         \
            return false;                                                                                              \
    } while (0)
    if (i < n && p[i] == '0')
        i++;
    else
        DIGITS(1);
    if (i < n && p[i] == '.') {
        i++;
        DIGITS(1);
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        DIGITS(1);
    }
#undef DIGITS
    return i == n;
}

static inline size_t skip_ws(const doc_t *d, size_t p)
{
    while (p < d->len && (d->js[p] == ' ' || d->js[p] == '\t' || d->js[p] == '\n' || d->js[p] == '\r'))
        p++;
    return p;
}

/* whether byte p is c (after white space), *p then past it */
static inline bool expect(const doc_t *d, size_t *p, char c)
{
    size_t q = skip_ws(d, *p);
    if (q >= d->len || d->js[q] != c)
        return false;
    *p = q + 1;
    return true;
}

/* a string token (a key: size 1, a value: size 0) opening at byte *p */
static bool walk_string(const doc_t *d, int i, size_t *p, int size)
{
    const jsmntok_t *t = &d->tok[i];
    /* jsmn's string ends at its first unescaped quote */
    if (i >= d->ntok || t->type != JSMN_STRING || t->size != size || !expect(d, p, '"') || (size_t)t->start != *p ||
        t->end < t->start || (size_t)t->end >= d->len || d->js[t->end] != '"')
        return false;
    *p = (size_t)t->end + 1;
    return true;
}

/* The value of token i, which must open at byte *p (after white space), in
 * the grammar, every byte accounted for; *p then past it. The index of the
 * token after its subtree, or -1. */
static int walk(doc_t *d, int i, size_t *p, int depth)
{
    if (i >= d->ntok || depth > FAST_TOKENS)
        return -1;
    const jsmntok_t *t = &d->tok[i];
    size_t q = skip_ws(d, *p);
    int next = i + 1;
    if (t->type == JSMN_STRING) {
        if (!walk_string(d, i, p, 0))
            return -1;
    } else if (t->type == JSMN_PRIMITIVE) {
        if ((size_t)t->start != q || t->size != 0 || t->end <= t->start ||
            !primitive_ok(d->js + t->start, (size_t)(t->end - t->start)))
            return -1;
        *p = (size_t)t->end;
    } else if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
        bool obj = t->type == JSMN_OBJECT;
        if ((size_t)t->start != q || !expect(d, &q, obj ? '{' : '['))
            return -1;
        for (int k = 0; k < t->size; k++) {
            if (k > 0 && !expect(d, &q, ','))
                return -1;
            if (obj) {
                if (!walk_string(d, next, &q, 1) || !expect(d, &q, ':'))
                    return -1;
                d->after[next] = next + 1;
                next++;
            }
            if ((next = walk(d, next, &q, depth + 1)) < 0)
                return -1;
        }
        if (!expect(d, &q, obj ? '}' : ']') || (size_t)t->end != q)
            return -1;
        *p = q;
    } else {
        return -1;
    }
    d->after[i] = next;
    return next;
}

/* d holds data[0..len) as one JSON object, checked as cm_json_parse would
 * (bytes, grammar, surrogates), in at most FAST_TOKENS tokens */
static bool load(doc_t *d, const char *data, size_t len)
{
    if (len == 0 || len > RT_CLOUD_MAX_EVENT || !cm_json_bytes_ok(data, len))
        return false;
    jsmn_parser jp;
    jsmn_init(&jp);
    int n = jsmn_parse(&jp, data, len, d->tok, FAST_TOKENS);
    if (n < 1 || d->tok[0].type != JSMN_OBJECT)
        return false;
    d->js = data;
    d->len = len;
    d->ntok = n;
    size_t p = 0;
    return walk(d, 0, &p, 0) == n && skip_ws(d, p) == len && escapes_ok(data, len);
}

/* ------------------------------------------------------- reading the tokens */

static bool is_str(const doc_t *d, int i) { return i >= 0 && d->tok[i].type == JSMN_STRING; }

static const char *raw(const doc_t *d, int i) { return d->js + d->tok[i].start; }

static size_t raw_len(const doc_t *d, int i) { return (size_t)(d->tok[i].end - d->tok[i].start); }

/* string token i is exactly lit (no escape: a key spelled with escapes is
 * not one we know, and goes the cJSON way) */
static bool str_is(const doc_t *d, int i, const char *lit)
{
    size_t n = strlen(lit);
    return is_str(d, i) && raw_len(d, i) == n && memcmp(raw(d, i), lit, n) == 0;
}

/* A count or an index: digits only, at most MAX_DIGITS (the exact doubles
 * cJSON would read): true with *v. */
static bool count_of(const doc_t *d, int i, int64_t *v)
{
    if (i < 0 || d->tok[i].type != JSMN_PRIMITIVE)
        return false;
    const char *p = raw(d, i);
    size_t n = raw_len(d, i);
    if (n == 0 || n > MAX_DIGITS)
        return false;
    int64_t x = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return false;
        x = x * 10 + (p[k] - '0');
    }
    *v = x;
    return true;
}

/* The keys an object may hold, each with the token index of its value
 * (-1: absent). */
typedef struct {
    const char *key;
    size_t len;
    int *val; /* NULL: a key known to be harmless, its value ignored */
} field_t;
#define FIELD(key, val) { key, sizeof(key) - 1, val }

/* Object token o's values by key: false when o is not an object, holds a
 * key not in f[0..n) or holds one twice (cJSON would take the first: the
 * cJSON path decides). */
static bool fields(const doc_t *d, int o, const field_t *f, size_t n)
{
    if (o < 0 || d->tok[o].type != JSMN_OBJECT)
        return false;
    for (size_t k = 0; k < n; k++)
        if (f[k].val)
            *f[k].val = -1;
    int key = o + 1;
    for (int c = 0; c < d->tok[o].size; c++) {
        const char *r = raw(d, key);
        size_t len = raw_len(d, key), k = 0;
        while (k < n && (f[k].len != len || f[k].key[0] != r[0] || memcmp(f[k].key, r, len) != 0))
            k++;
        if (k == n)
            return false;
        if (f[k].val) {
            if (*f[k].val >= 0)
                return false;
            *f[k].val = key + 1;
        }
        key = d->after[key + 1];
    }
    return true;
}

/* ----------------------------------------------------------------- Anthropic */

static int utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string's content r[0..n), checked by load(), decoded as cJSON decodes
 * it into out (at least n bytes: no escape grows). The decoded length. */
static size_t unescape(const char *r, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i] != '\\') {
            out[o++] = r[i];
            continue;
        }
        char c = r[++i];
        switch (c) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(r + i + 1);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* escapes_ok: its low half follows */
                cp = 0x10000 + (((cp & 0x3FF) << 10) | ((unsigned)hex4(r + i + 3) & 0x3FF));
                i += 6;
            }
            o += (size_t)utf8_put(out + o, cp);
            break;
        }
        default: out[o++] = c; /* " \ / */
        }
    }
    return o;
}

/* content_block_delta: a text_delta for a text block, an input_json_delta
 * for a tool block, of a block already started (on_block_delta's work when
 * it ends well) */
static int block_delta(rt_cloud_stream_t *s, const doc_t *d)
{
    int type = -1, index = -1, delta = -1, dtype = -1, text = -1, json = -1;
    const field_t top[] = { FIELD("type", &type), FIELD("index", &index), FIELD("delta", &delta) };
    const field_t del[] = { FIELD("type", &dtype), FIELD("text", &text), FIELD("partial_json", &json) };
    int64_t i = -1;
    if (!fields(d, 0, top, CM_ARRAY_LEN(top)) || !str_is(d, type, "content_block_delta") || !count_of(d, index, &i) ||
        i >= s->nblocks || !fields(d, delta, del, CM_ARRAY_LEN(del)))
        return FAST_NO;
    int tool = s->block_tool[i];
    if (tool == -1 && str_is(d, dtype, "text_delta") && is_str(d, text) && json < 0) {
        emit_text_raw(s, raw(d, text), raw_len(d, text));
        return FAST_DONE;
    }
    if (tool >= 0 && str_is(d, dtype, "input_json_delta") && is_str(d, json) && text < 0 &&
        raw_len(d, json) <= ARGS_MAX) {
        char args[ARGS_MAX];
        size_t n = unescape(raw(d, json), raw_len(d, json), args);
        if (n > 0) {
            emit_tool_args(s, tool, args, n);
            s->block_args[i] = true;
        }
        return FAST_DONE;
    }
    return FAST_NO; /* a block ignored or never started, thinking, a mismatch: the cJSON path */
}

int anthropic_fast(rt_cloud_stream_t *s, const cm_sse_event_t *ev)
{
    if (!fast_on)
        return FAST_NO;
    const char *name = ev->event ? ev->event : "message";
    if (strcmp(name, "ping") == 0)
        return FAST_DONE; /* anthropic_event reads nothing of it either */
    /* named, or unnamed with the type in the JSON (which block_delta
     * requires either way) */
    if (strcmp(name, "content_block_delta") != 0 && strcmp(name, "message") != 0)
        return FAST_NO;
    doc_t d;
    if (!load(&d, ev->data, ev->data_len))
        return FAST_NO;
    return block_delta(s, &d);
}

/* -------------------------------------------------------------------- Gemini */

typedef struct {
    int finish;   /* finishReason's token, -1 */
    int parts;    /* content.parts' token, -1 */
    int usage;    /* usageMetadata's token, -1 */
    int64_t p, c, th, t; /* the counts as usage_of reads them */
} gemini_t;

/* usageMetadata: the four counts usage_of reads, each a count when given,
 * and the details it ignores */
static bool gemini_usage(const doc_t *d, gemini_t *g)
{
    int p = -1, c = -1, th = -1, t = -1;
    const field_t f[] = { FIELD("promptTokenCount", &p),         FIELD("candidatesTokenCount", &c),
                          FIELD("thoughtsTokenCount", &th),      FIELD("totalTokenCount", &t),
                          FIELD("cachedContentTokenCount", NULL), FIELD("toolUsePromptTokenCount", NULL),
                          FIELD("promptTokensDetails", NULL),     FIELD("candidatesTokensDetails", NULL),
                          FIELD("cacheTokensDetails", NULL),      FIELD("toolUsePromptTokensDetails", NULL) };
    g->p = g->c = g->th = 0;
    g->t = -1;
    return fields(d, g->usage, f, CM_ARRAY_LEN(f)) && (p < 0 || count_of(d, p, &g->p)) &&
           (c < 0 || count_of(d, c, &g->c)) && (th < 0 || count_of(d, th, &g->th)) && (t < 0 || count_of(d, t, &g->t));
}

/* the one candidate: text parts only (part_kind's PART_TEXT and nothing
 * else), a finish reason string, fields candidate_parts ignores */
static bool gemini_candidate(const doc_t *d, int cands, gemini_t *g)
{
    int cand = cands + 1, content = -1;
    const field_t cf[] = { FIELD("content", &content), FIELD("finishReason", &g->finish), FIELD("index", NULL),
                           FIELD("safetyRatings", NULL) };
    const field_t of[] = { FIELD("parts", &g->parts), FIELD("role", NULL) };
    g->parts = -1;
    if (d->tok[cands].type != JSMN_ARRAY || d->tok[cands].size != 1 || !fields(d, cand, cf, CM_ARRAY_LEN(cf)) ||
        (g->finish >= 0 && !is_str(d, g->finish)) || (content >= 0 && !fields(d, content, of, CM_ARRAY_LEN(of))))
        return false;
    if (g->parts < 0)
        return true;
    if (d->tok[g->parts].type != JSMN_ARRAY)
        return false;
    int part = g->parts + 1;
    for (int k = 0; k < d->tok[g->parts].size; k++) {
        int text = -1, sig = -1;
        const field_t pf[] = { FIELD("text", &text), FIELD("thoughtSignature", &sig) };
        if (!fields(d, part, pf, CM_ARRAY_LEN(pf)) || !is_str(d, text) || (sig >= 0 && !is_str(d, sig)))
            return false;
        part = d->after[part];
    }
    return true;
}

int google_fast(rt_cloud_stream_t *s, const cm_sse_event_t *ev)
{
    doc_t d;
    if (!fast_on || !load(&d, ev->data, ev->data_len))
        return FAST_NO;
    gemini_t g = { .finish = -1, .parts = -1, .usage = -1 };
    int cands = -1;
    const field_t f[] = { FIELD("candidates", &cands),   FIELD("usageMetadata", &g.usage), FIELD("modelVersion", NULL),
                          FIELD("responseId", NULL),     FIELD("createTime", NULL) };
    if (!fields(&d, 0, f, CM_ARRAY_LEN(f)) || cands < 0 || !gemini_candidate(&d, cands, &g) ||
        (g.usage >= 0 && !gemini_usage(&d, &g)))
        return FAST_NO;
    /* google_finish reads a C string: the reason copied, when it has no
     * escape and is short (every reason Gemini names is) */
    char reason[40];
    if (g.finish >= 0) {
        size_t n = raw_len(&d, g.finish);
        if (n >= sizeof(reason) || memchr(raw(&d, g.finish), '\\', n))
            return FAST_NO;
        memcpy(reason, raw(&d, g.finish), n);
        reason[n] = '\0';
    }
    /* stream_json's work, in its order */
    if (g.parts >= 0) {
        int part = g.parts + 1;
        for (int k = 0; k < d.tok[g.parts].size; k++) {
            int text = -1;
            const field_t pf[] = { FIELD("text", &text), FIELD("thoughtSignature", NULL) };
            fields(&d, part, pf, CM_ARRAY_LEN(pf)); /* as gemini_candidate found it */
            emit_text_raw(s, raw(&d, text), raw_len(&d, text));
            part = d.after[part];
        }
    }
    if (g.finish >= 0)
        s->finish = google_finish(reason);
    if (s->finish && s->ntools > 0)
        s->finish = "tool_calls";
    if (g.usage >= 0) { /* cumulative: the last one wins */
        s->prompt = g.p;
        s->completion = g.c + g.th;
        s->total = g.t;
    }
    return FAST_DONE;
}
