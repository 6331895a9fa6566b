/* api_metrics: placeholder until the Prometheus endpoints land. */
#include "api/handlers.h"

static void todo(cm_http_req_t *req)
{
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}
void rt_h_metrics(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_metrics_cloud(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_metrics_targets(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
