/* store: the router's durable state in SQLite (the only module that includes
 * sqlite3.h; a PostgreSQL implementation can follow behind this interface).
 *
 * Opened once at start: WAL mode, numbered migrations applied in transactions.
 * Reads may be called from any thread (each call takes a connection from a
 * small pool or serialises); writes go through one writer path so request
 * loops never wait on the disk for fire-and-forget records.
 * Strings returned in records are owned by the record (free with the matching
 * _free function). */
#ifndef RT_STORE_H
#define RT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_store rt_store_t;

/* url: "sqlite:/path/to/router.db" (or a bare path). 0, or -1 with err. */
int rt_store_open(const char *url, rt_store_t **out, char *err, size_t errlen);
void rt_store_close(rt_store_t *st);
/* Schema version after migrations. */
int rt_store_schema_version(rt_store_t *st);

/* ---- nodes (registry persistence) ---- */
typedef struct {
    char *id;              /* UUID */
    char *machine_name;
    char *ip_address;
    int runtime_port;
    int api_port;          /* where the router sends /v1 requests */
    char *runtime_version;
    bool gpu_available;
    char *gpu_devices_json; /* JSON array text, as registered */
    char *custom_name;     /* NULL when unset */
    char *tags_json;       /* JSON array text, "[]" when unset */
    char *notes;           /* NULL when unset */
    char *token_hash;      /* hex SHA-256 of the node token */
    int64_t registered_at; /* ms since epoch */
} rt_node_rec_t;

void rt_node_rec_free(rt_node_rec_t *rec); /* frees the strings, not rec itself */
/* Insert or replace by id. */
int rt_store_node_upsert(rt_store_t *st, const rt_node_rec_t *rec);
int rt_store_node_delete(rt_store_t *st, const char *id);
/* Calls cb for every stored node (rec is freed after cb returns). */
int rt_store_nodes_each(rt_store_t *st, void (*cb)(const rt_node_rec_t *rec, void *arg), void *arg);

#endif
