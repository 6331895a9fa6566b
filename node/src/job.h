/* job: one request handed from the HTTP loop to the engine, and its results
 * handed back.
 *
 * The loop fills the request part, then submits; from then on the engine
 * thread appends output (text pieces, the finish, an error, embeddings)
 * under the job's mutex and rings the job's notifier, which runs a callback
 * on the loop thread (an event made active from the engine thread). A job is
 * reference counted: the loop, the engine and a pending notification each
 * hold one. */
#ifndef ND_JOB_H
#define ND_JOB_H

#include "sampling.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* The status of a job, and of a request, whose client went away (nginx's
 * "client closed request"): nobody reads it, and it is not an error. */
#define ND_STATUS_CLIENT_GONE 499

typedef enum { ND_JOB_CHAT, ND_JOB_COMPLETION, ND_JOB_EMBED } nd_job_kind_t;
typedef enum { ND_FINISH_NONE, ND_FINISH_STOP, ND_FINISH_LENGTH } nd_finish_t;

typedef struct nd_notify nd_notify_t;
typedef struct nd_job nd_job_t;

struct nd_job {
    /* ---- request: written by the loop before submit, then read-only ---- */
    nd_job_kind_t kind;
    int index;           /* choice / embedding index in the reply */
    char *model_id;
    char *model_path;
    char *prompt;        /* ND_JOB_COMPLETION */
    int nmsg;            /* ND_JOB_CHAT */
    char **roles, **contents;
    int ninputs;         /* ND_JOB_EMBED */
    char **inputs;
    nd_sampling_t sp;
    uint64_t t_submit_us;

    atomic_bool cancelled; /* set by the loop; the engine drops the job */
    atomic_bool held;      /* set by the loop while its client reads nothing:
                            * the engine keeps the sequence but skips it */

    /* ---- results, under mu ---- */
    pthread_mutex_t mu;
    char **pieces;       /* text not yet taken by the loop */
    size_t npieces, cappieces;
    bool done;
    nd_finish_t finish;
    int status;          /* 0, or the HTTP status of an error */
    char errcode[48];
    char errmsg[256];
    int n_prompt, n_gen;
    uint64_t t_first_us; /* first token sampled (0: none yet) */
    float *embd;         /* ninputs x n_embd, L2-normalised */
    int n_embd;

    /* ---- private ---- */
    int refs;
    nd_notify_t *notify;
    bool notify_queued;
    nd_job_t *notify_next;
    nd_job_t *engine_next; /* the engine's queues */
    void *owner;           /* loop-side state; loop thread only */
    bool owner_saw_done;   /* loop thread only */
};

/* A new job with one reference (the caller's). */
nd_job_t *nd_job_new(nd_job_kind_t kind, nd_notify_t *notify);
nd_job_t *nd_job_ref(nd_job_t *j);
void nd_job_unref(nd_job_t *j);

/* ---- engine side: each call notifies the loop ---- */
void nd_job_emit(nd_job_t *j, const char *text, size_t len);
void nd_job_finish(nd_job_t *j, nd_finish_t finish, int n_prompt, int n_gen);
void nd_job_fail(nd_job_t *j, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Takes ownership of embd (ninputs x n_embd floats). */
void nd_job_embeddings(nd_job_t *j, float *embd, int n_embd, int n_prompt);
void nd_job_first_token(nd_job_t *j);

/* ---- loop side ---- */
/* Takes the pending pieces: a NULL-terminated array the caller frees (each
 * string and the array), or NULL when there are none. */
char **nd_job_take(nd_job_t *j, size_t *n);

/* ---- a FIFO of jobs linked through engine_next (one owner at a time) ---- */
typedef struct {
    nd_job_t *head, *tail;
    int n;
} nd_jobq_t;

void nd_jobq_push(nd_jobq_t *q, nd_job_t *j);
nd_job_t *nd_jobq_pop(nd_jobq_t *q); /* NULL when empty */
/* Fails every job (status, code, message) and drops the queue's references. */
void nd_jobq_fail_all(nd_jobq_t *q, int status, const char *code, const char *msg);

/* ---- notifier: callback on the loop thread for jobs with news ---- */
typedef void (*nd_notify_fn)(nd_job_t *job, void *ud);
nd_notify_t *nd_notify_new(struct event_base *base, nd_notify_fn fn, void *ud);
void nd_notify_free(nd_notify_t *n);
/* From any thread: schedules fn(job) on the loop (coalesced per job). */
void nd_notify_push(nd_notify_t *n, nd_job_t *job);

#endif
