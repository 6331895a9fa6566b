/* api_hf: PLACEHOLDER handlers (501) until the module lands. */
#include "api/handlers.h"

void rt_h_models_available(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_register(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_tasks(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_task_get(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_task_cancel(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_convert(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_convert_list(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_convert_get(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

void rt_h_models_convert_delete(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

