/* http_json: JSON request bodies, the one place where "the body must be a
 * JSON object" is checked and answered. Apart from http_reply.c so that the
 * server's connection code (and its fuzzer) does not need the JSON helpers. */
#include "http_server.h"

#include "json.h"

cJSON *cm_http_req_json_object(cm_http_req_t *req)
{
    size_t len;
    const char *body = cm_http_req_body(req, &len);
    cJSON *j = cm_json_parse(body, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        cm_http_reply_error(req, 400, "invalid_request_error", "invalid_json", NULL,
                            "The request body must be a JSON object");
        return NULL;
    }
    return j;
}
