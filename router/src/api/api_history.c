/* api_history: placeholder until the request history API lands. */
#include "api/handlers.h"

static void todo(cm_http_req_t *req)
{
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}
void rt_h_history_list(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_history_get(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_history_export(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
