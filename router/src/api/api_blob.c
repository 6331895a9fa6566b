/* api_blob: PLACEHOLDER handlers (501) until the module lands. */
#include "api/handlers.h"

void rt_h_models_blob(cm_http_req_t *req, void *ud)
{
    (void)ud;
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}

