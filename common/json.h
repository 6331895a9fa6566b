/* json: thin typed helpers over cJSON for strict request parsing.
 *
 * Getters return CM_JSON_OK when the key holds the right type, CM_JSON_ABSENT
 * when the key is missing or null, CM_JSON_TYPE when it holds another type.
 * Out-pointers borrowed from the object stay valid while it lives. */
#ifndef CM_JSON_H
#define CM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum { CM_JSON_OK = 0, CM_JSON_ABSENT = 1, CM_JSON_TYPE = -1 };

int cm_json_str(const cJSON *obj, const char *key, const char **out);
int cm_json_num(const cJSON *obj, const char *key, double *out);
/* Integral numbers only (3.0 is accepted, 3.5 is CM_JSON_TYPE). */
int cm_json_int(const cJSON *obj, const char *key, long long *out);
int cm_json_bool(const cJSON *obj, const char *key, bool *out);

/* Parses len bytes; NULL when not JSON (invalid UTF-8 included), nested
 * deeper than cJSON allows, or holding what cJSON would accept but change:
 * the escape \u0000 (cJSON's strings end at it) and control bytes
 * (U+0000-U+001F) unescaped in a string, or outside one other than JSON's
 * whitespace. */
cJSON *cm_json_parse(const char *text, size_t len);
/* The byte checks cm_json_parse makes before cJSON's (valid UTF-8, no
 * control byte unescaped in a string or outside one other than \t \n \r,
 * no escape \u0000), for parsers that take the bytes as they are. Not a
 * grammar check: true does not mean s[0..n) is JSON. */
bool cm_json_bytes_ok(const char *s, size_t n);
/* Compact text; caller frees. */
char *cm_json_print(const cJSON *json);

/* Adds key to obj: ms since the epoch as an RFC 3339 UTC time with
 * milliseconds (cm_time_rfc3339), or null when ms <= 0 (unset) or past the
 * year 9999. */
void cm_json_add_time(cJSON *obj, const char *key, int64_t ms);

#endif
