/* api_dashboard: placeholder until the dashboard data APIs land. */
#include "api/handlers.h"

static void todo(cm_http_req_t *req)
{
    cm_http_reply_error(req, 501, NULL, "not_implemented", NULL, "Not implemented yet");
}
void rt_h_dash_overview(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_dash_stats(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_dash_nodes(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_dash_request_history(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_dash_node_metrics(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_dash_logs_router(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
void rt_h_nodes_logs(cm_http_req_t *req, void *ud) { (void)ud; todo(req); }
