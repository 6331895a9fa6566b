/* Handler prototypes for routes.c. Each api_*.c module defines its own; this
 * header only gathers them so the route table can name them. */
#ifndef RT_HANDLERS_H
#define RT_HANDLERS_H

#include "http_server.h"

/* server.c */
void rt_h_health(cm_http_req_t *req, void *ud);

#endif
