/* store_internal: what the store_*.c files share. Private to the store: no
 * other module includes this (it is the one place sqlite3.h is reached). */
#ifndef RT_STORE_INTERNAL_H
#define RT_STORE_INTERNAL_H

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>

typedef struct st_job {
    void (*run)(sqlite3 *db, void *arg); /* on the writer thread, inside a transaction */
    void (*free_arg)(void *arg);
    void *arg;
    struct st_job *next;
} st_job_t;

struct rt_store {
    sqlite3 *db;         /* writes (and migrations); every use holds mu */
    pthread_mutex_t mu;
    sqlite3 *rdb;        /* plain reads; every use holds rmu */
    pthread_mutex_t rmu;
    int version;

    /* writer thread: a FIFO of jobs run in batches, one transaction each */
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t qmu;
    pthread_cond_t qcond; /* jobs arrived or stop */
    pthread_cond_t qdone; /* a batch finished */
    st_job_t *head, *tail;
    size_t qlen;
    uint64_t posted, completed, dropped;
    bool stop;
};

/* Queues a job; never blocks on the disk. When the queue is full (see
 * store.c) the job is dropped (and counted) rather than stalling a loop. */
void st_post(rt_store_t *st, void (*run)(sqlite3 *db, void *arg), void *arg,
             void (*free_arg)(void *arg));

/* Prepares sql on st->db (caller holds mu); logs and returns NULL on error. */
sqlite3_stmt *st_prepare(sqlite3 *db, const char *sql);
/* Binds text, or NULL when s is NULL. */
void st_bind_text(sqlite3_stmt *s, int idx, const char *v);
/* A column as a new string (NULL for SQL NULL). */
char *st_col_dup(sqlite3_stmt *s, int col);
/* Steps a statement that returns no rows: RT_STORE_OK, RT_STORE_CONFLICT on a
 * unique constraint, RT_STORE_ERR otherwise (logged). Finalizes it. */
int st_step_done(sqlite3 *db, sqlite3_stmt *s);
/* Executes a parameterless statement; RT_STORE_OK or RT_STORE_ERR (logged). */
int st_exec(sqlite3 *db, const char *sql);

#endif
