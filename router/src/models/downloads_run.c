/* downloads_run: one task's work on its thread (see downloads_int.h): the
 * files fetched (hf.c) into "<file>.part", renamed once verified, the model
 * added to the catalogue; for a convert task, the repository fetched into a
 * work directory and the converter run in its own process group. */
#include "models/downloads_int.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

extern char **environ;

#define KILL_GRACE_MS 5000 /* SIGTERM, then this long before SIGKILL */

char *dl_local_path(rt_downloads_t *d, const char *model_id, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (!*b || *b == '.' || strlen(b) > 255)
        return NULL;
    for (const char *s = b; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '\\')
            return NULL;
    return cm_xasprintf("%s/%s/%s", d->dir, model_id, b);
}

static char *work_dir(rt_downloads_t *d, const dl_task_t *t)
{
    return cm_xasprintf("%s/.convert/%s", d->dir, t->id);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void dl_remove_leftovers(rt_downloads_t *d, dl_task_t *t)
{
    if (t->convert) {
        char *w = work_dir(d, t);
        rm_tree(w);
        free(w);
        return;
    }
    /* the parts, and parts already renamed of a model never added */
    char id[RT_MODEL_ID_MAX];
    for (size_t i = 0; t->model_id && i < t->nfiles; i++) {
        char *local = dl_local_path(d, t->model_id, t->files[i].path);
        if (!local)
            continue;
        char *part = cm_xasprintf("%s.part", local);
        unlink(part);
        if (!rt_models_find_path(d->models, local, id))
            unlink(local);
        free(part);
        free(local);
    }
    if (t->model_id) {
        char *dir = cm_xasprintf("%s/%s", d->dir, t->model_id);
        rmdir(dir); /* only when empty */
        free(dir);
    }
}

/* ---- progress ---- */

typedef struct {
    rt_downloads_t *d;
    dl_task_t *t;
    uint64_t before; /* bytes of the task's earlier files */
} prog_t;

static bool should_stop(rt_downloads_t *d, dl_task_t *t)
{
    return atomic_load(&t->cancel) || atomic_load(&d->stop);
}

/* Publishes bytes_done, a moving average of the speed and the ETA; writes
 * the row at most every DL_PERSIST_MS. */
static void publish(rt_downloads_t *d, dl_task_t *t, uint64_t done)
{
    uint64_t now = cm_now_ms();
    pthread_mutex_lock(&d->mu);
    t->bytes_done = done;
    if (t->rate_ms == 0) {
        t->rate_ms = now;
        t->rate_bytes = done;
    } else if (now - t->rate_ms >= 500) {
        double inst = (double)(done - (done >= t->rate_bytes ? t->rate_bytes : done)) * 1000.0 /
                      (double)(now - t->rate_ms);
        t->speed_bps = t->speed_bps > 0 ? 0.7 * t->speed_bps + 0.3 * inst : inst;
        t->rate_ms = now;
        t->rate_bytes = done;
        t->eta_s = t->speed_bps >= 1 && t->bytes_total >= done
                       ? (int64_t)((double)(t->bytes_total - done) / t->speed_bps)
                       : -1;
    }
    if (now - t->persist_ms >= DL_PERSIST_MS) {
        t->persist_ms = now;
        dl_persist_locked(d, t);
    }
    pthread_mutex_unlock(&d->mu);
}

static int on_progress(void *arg, uint64_t have)
{
    prog_t *p = arg;
    publish(p->d, p->t, p->before + have);
    return should_stop(p->d, p->t) ? 1 : 0;
}

/* ---- fetching a task's files ---- */

/* Fetches every file of t to its local path (under dir for a download,
 * the work directory keeping the repository's paths for a convert). 0,
 * RT_HF_ABORTED, or -1 after failing the task. */
static int fetch_all(rt_downloads_t *d, dl_task_t *t, char (*sha)[65], char **locals)
{
    uint64_t before = 0;
    for (size_t i = 0; i < t->nfiles; i++) {
        dl_file_t *f = &t->files[i];
        char *local = locals[i];
        char *slash = strrchr(local, '/');
        *slash = 0;
        cm_mkdir_p(local, 0755);
        *slash = '/';
        struct stat sb;
        if (stat(local, &sb) == 0 && (uint64_t)sb.st_size == f->size) {
            /* verified and renamed by an earlier run of this task */
            memcpy(sha[i], f->sha256, 65);
            before += f->size;
            continue;
        }
        char *part = cm_xasprintf("%s.part", local);
        prog_t p = { d, t, before };
        rt_hf_fetch_t fx = { t->repo, dl_rev(t), f->path, part, f->size, f->sha256, on_progress, &p };
        rt_hf_err_t e;
        int rc = rt_hf_download(&d->hf, &fx, sha[i], &e);
        if (rc == 0 && rename(part, local) != 0) {
            e.status = 500;
            snprintf(e.msg, sizeof(e.msg), "cannot rename %s: %s", part, strerror(errno));
            rc = -1;
        }
        free(part);
        if (rc == RT_HF_ABORTED)
            return rc;
        if (rc != 0) {
            LOG_WARN("models", "task %s: %s", t->id, e.msg);
            dl_set_state(d, t, "failed", e.msg);
            return -1;
        }
        /* the rename reaches the disk with its directory */
        int dfd = open(local, O_RDONLY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        *slash = 0;
        dfd = open(local, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        before += f->size;
    }
    publish(d, t, before);
    return 0;
}

/* The end of an aborted run: cancelled (files deleted) or, when the router
 * stops, left as it is to resume at the next start. */
static void aborted(rt_downloads_t *d, dl_task_t *t)
{
    if (atomic_load(&t->cancel)) {
        dl_remove_leftovers(d, t);
        dl_set_state(d, t, "cancelled", NULL);
        LOG_INFO("models", "task %s cancelled", t->id);
    } else {
        pthread_mutex_lock(&d->mu);
        dl_persist_locked(d, t); /* its bytes, still in its running state */
        pthread_mutex_unlock(&d->mu);
    }
}

/* Adds the files to the catalogue; the task ends ready or failed. */
static void add_model(rt_downloads_t *d, dl_task_t *t, char **locals, char (*sha)[65], size_t n)
{
    dl_set_state(d, t, "verifying", NULL);
    rt_model_rec_t rec = { 0 };
    rec.id = t->model_id;
    rec.files = cm_xcalloc(n, sizeof(*rec.files));
    rec.nfiles = n;
    for (size_t i = 0; i < n; i++) {
        const char *b = strrchr(locals[i], '/');
        rec.files[i].name = (char *)(b ? b + 1 : locals[i]);
        rec.files[i].path = locals[i];
        struct stat sb;
        rec.files[i].size = stat(locals[i], &sb) == 0 ? (uint64_t)sb.st_size : 0;
        rec.size += rec.files[i].size;
        memcpy(rec.files[i].sha256, sha[i], RT_SHA256_HEX);
    }
    rec.source_repo = t->repo;
    rec.source_revision = t->revision;
    rec.source_file = t->convert ? NULL : t->filename;
    rec.format = "gguf";
    rec.state = "ready";
    rec.created_ms = (int64_t)cm_wall_ms();
    char id[RT_MODEL_ID_MAX], err[512] = "";
    int rc = rt_models_add(d->models, &rec, id, err, sizeof(err));
    free(rec.files);
    if (rc == 0 || rc == RT_MODELS_EXISTS) {
        pthread_mutex_lock(&d->mu);
        free(t->model_id);
        t->model_id = cm_xstrdup(id);
        pthread_mutex_unlock(&d->mu);
        dl_set_state(d, t, "ready", NULL);
        LOG_INFO("models", "task %s: %s ready as %s", t->id, t->repo, id);
        return;
    }
    LOG_WARN("models", "task %s: %s", t->id, err);
    for (size_t i = 0; i < n; i++)
        unlink(locals[i]);
    if (t->model_id) {
        char *dir = cm_xasprintf("%s/%s", d->dir, t->model_id);
        rmdir(dir); /* only when empty */
        free(dir);
    }
    dl_set_state(d, t, "failed", err[0] ? err : "the catalogue refused the model");
}

static void run_download(rt_downloads_t *d, dl_task_t *t)
{
    char **locals = cm_xcalloc(t->nfiles + 1, sizeof(*locals));
    char(*sha)[65] = cm_xcalloc(t->nfiles + 1, sizeof(*sha));
    for (size_t i = 0; i < t->nfiles; i++)
        if (!(locals[i] = dl_local_path(d, t->model_id, t->files[i].path))) {
            dl_set_state(d, t, "failed", "a file name of the repository cannot be stored");
            goto out;
        }
    int rc = fetch_all(d, t, sha, locals);
    if (rc == RT_HF_ABORTED)
        aborted(d, t);
    else if (rc == 0)
        add_model(d, t, locals, sha, t->nfiles);
out:
    for (size_t i = 0; i < t->nfiles; i++)
        free(locals[i]);
    free(locals);
    free(sha);
}

/* ---- the converter ---- */

static void log_append(rt_downloads_t *d, dl_task_t *t, const char *p, size_t n)
{
    pthread_mutex_lock(&d->mu);
    if (n >= DL_LOG_MAX) {
        p += n - DL_LOG_MAX / 2;
        n = DL_LOG_MAX / 2;
    }
    if (t->log_len + n > DL_LOG_MAX) {
        /* keep the tail: the end of a failed run says why */
        size_t drop = t->log_len + n - DL_LOG_MAX / 2;
        drop = drop > t->log_len ? t->log_len : drop;
        memmove(t->log, t->log + drop, t->log_len - drop);
        t->log_len -= drop;
    }
    t->log = cm_xrealloc(t->log, t->log_len + n + 1);
    memcpy(t->log + t->log_len, p, n);
    t->log_len += n;
    t->log[t->log_len] = 0;
    pthread_mutex_unlock(&d->mu);
}

/* s with every {input}, {output}, {outtype} replaced: a new string. */
static char *substitute(const char *s, const char *in, const char *out, const char *ot)
{
    size_t cap = strlen(s) + 1, len = 0;
    char *r = cm_xmalloc(cap);
    while (*s) {
        const char *v = NULL;
        size_t skip = 0;
        if (strncmp(s, "{input}", 7) == 0)
            v = in, skip = 7;
        else if (strncmp(s, "{output}", 8) == 0)
            v = out, skip = 8;
        else if (strncmp(s, "{outtype}", 9) == 0)
            v = ot, skip = 9;
        size_t add = v ? strlen(v) : 1;
        cm_xgrow(&r, &cap, len + add + 1, 64);
        memcpy(r + len, v ? v : s, add);
        len += add;
        s += v ? skip : 1;
    }
    r[len] = 0;
    return r;
}

/* The router's environment minus what looks like a secret (HF_TOKEN, API
 * keys, passwords): the converter is the operator's command, but it need
 * not see the router's credentials. A new array of borrowed strings. */
static char **child_env(char *extra[3])
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = cm_xcalloc(n + 4, sizeof(*env));
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(klen < 255 ? klen : 255), environ[i]);
        if (strstr(key, "TOKEN") || strstr(key, "KEY") || strstr(key, "SECRET") || strstr(key, "PASSWORD") ||
            strstr(key, "DATABASE_URL") || strncmp(key, "LLM_ROUTER_CONVERT_", 19) == 0)
            continue;
        env[o++] = environ[i];
    }
    for (int i = 0; i < 3; i++)
        env[o++] = extra[i];
    return env;
}

/* Runs argv in its own process group, output into the log. 0 exit status
 * 0; otherwise -1 with why (timeout, cancel, stop, status). */
static int run_converter(rt_downloads_t *d, dl_task_t *t, char **argv, const char *in, const char *outp,
                         const char *ot, char *why, size_t whylen)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "cannot start the converter: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* no router socket reaches it */
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    /* its own session and process group (setsid): a kill of the group
     * reaches whatever it started, and no terminal signal reaches it */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *extra[3] = { cm_xasprintf("LLM_ROUTER_CONVERT_INPUT=%s", in),
                       cm_xasprintf("LLM_ROUTER_CONVERT_OUTPUT=%s", outp),
                       cm_xasprintf("LLM_ROUTER_CONVERT_OUTTYPE=%s", ot) };
    char **env = child_env(extra);
    pid_t pid;
    int src = posix_spawnp(&pid, argv[0], &fa, &at, argv, env);
    free(env);
    for (int i = 0; i < 3; i++)
        free(extra[i]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(pfd[1]);
    if (src != 0) {
        close(pfd[0]);
        snprintf(why, whylen, "cannot run the converter %s: %s (LLM_ROUTER_CONVERTER)", argv[0], strerror(src));
        return -1;
    }
    LOG_INFO("models", "task %s: converter started (pid %d)", t->id, (int)pid);
    uint64_t start = cm_now_ms(), term_at = 0;
    const char *reason = NULL;
    int status = 0;
    bool exited = false, eof = false;
    char buf[8192];
    while (!exited) {
        struct pollfd p = { pfd[0], POLLIN, 0 };
        if (!eof && poll(&p, 1, 200) > 0) {
            ssize_t r = read(pfd[0], buf, sizeof(buf));
            if (r > 0)
                log_append(d, t, buf, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                eof = true;
        } else if (eof) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = true;
            break;
        }
        uint64_t now = cm_now_ms();
        if (!reason) {
            if (atomic_load(&t->cancel))
                reason = "cancelled";
            else if (atomic_load(&d->stop))
                reason = "stopped";
            else if (now - start >= (uint64_t)d->convert_timeout_s * 1000)
                reason = "timeout";
            if (reason) {
                kill(-pid, SIGTERM);
                term_at = now;
            }
        } else if (term_at && now - term_at >= KILL_GRACE_MS) {
            kill(-pid, SIGKILL);
            term_at = 0;
        }
        pthread_mutex_lock(&d->mu);
        if (now - t->persist_ms >= DL_PERSIST_MS) {
            t->persist_ms = now;
            dl_persist_locked(d, t);
        }
        pthread_mutex_unlock(&d->mu);
    }
    /* whatever the converter left running in its group ends with it */
    kill(-pid, SIGKILL);
    for (ssize_t r; !eof && (r = read(pfd[0], buf, sizeof(buf))) > 0;)
        log_append(d, t, buf, (size_t)r);
    close(pfd[0]);
    if (reason && strcmp(reason, "timeout") == 0) {
        snprintf(why, whylen, "the converter ran longer than %d s (LLM_ROUTER_CONVERT_TIMEOUT) and was killed",
                 d->convert_timeout_s);
        return -1;
    }
    if (reason) {
        snprintf(why, whylen, "%s", reason);
        return -2;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(why, whylen, "the converter exited with status %d (its output is in the task's log)",
                 WEXITSTATUS(status));
    else
        snprintf(why, whylen, "the converter was killed by signal %d (its output is in the task's log)",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

static void run_convert(rt_downloads_t *d, dl_task_t *t)
{
    char *work = work_dir(d, t), *src = cm_xasprintf("%s/src", work), *outdir = cm_xasprintf("%s/out", work);
    char **locals = cm_xcalloc(t->nfiles + 1, sizeof(*locals));
    char(*sha)[65] = cm_xcalloc(t->nfiles + 1, sizeof(*sha));
    char *out = NULL, *final = NULL, *file = NULL, **argv = NULL;
    wordexp_t we = { 0 };
    bool have_we = false;
    for (size_t i = 0; i < t->nfiles; i++)
        locals[i] = cm_xasprintf("%s/%s", src, t->files[i].path);
    if (!strcmp(t->state, "queued"))
        dl_set_state(d, t, "downloading", NULL);
    int rc = fetch_all(d, t, sha, locals);
    if (rc == RT_HF_ABORTED) {
        aborted(d, t);
        goto out;
    }
    if (rc != 0)
        goto out;
    /* "<name>.<OUTTYPE>.gguf": the catalogue's id rule drops the tag */
    const char *rb = strrchr(t->repo, '/');
    char ot[16];
    snprintf(ot, sizeof(ot), "%s", t->outtype ? t->outtype : "f16");
    upper(ot);
    file = cm_xasprintf("%s.%s.gguf", t->name ? t->name : (rb ? rb + 1 : t->repo), ot);
    cm_mkdir_p(outdir, 0755);
    out = cm_xasprintf("%s/%s", outdir, file);
    unlink(out);
    dl_set_state(d, t, "converting", NULL);
    /* split like a shell would, without running commands (WRDE_NOCMD);
     * the placeholders are replaced in each word, so paths with spaces
     * stay one argument */
    int wrc = wordexp(d->converter, &we, WRDE_NOCMD);
    have_we = wrc == 0;
    if (!have_we || we.we_wordc == 0) {
        dl_set_state(d, t, "failed", "LLM_ROUTER_CONVERTER cannot be split into a command (quotes, $(...)?)");
        goto out;
    }
    const char *otv = t->outtype ? t->outtype : "f16";
    bool placeholders = strstr(d->converter, "{input}") || strstr(d->converter, "{output}");
    argv = cm_xcalloc(we.we_wordc + 6, sizeof(*argv));
    size_t ac = 0;
    for (size_t i = 0; i < we.we_wordc; i++)
        argv[ac++] = substitute(we.we_wordv[i], src, out, otv);
    if (!placeholders) {
        /* convert_hf_to_gguf.py's own arguments */
        argv[ac++] = cm_xstrdup(src);
        argv[ac++] = cm_xstrdup("--outfile");
        argv[ac++] = cm_xstrdup(out);
        argv[ac++] = cm_xstrdup("--outtype");
        argv[ac++] = cm_xstrdup(otv);
    }
    argv[ac] = NULL;
    char why[512];
    int crc = run_converter(d, t, argv, src, out, otv, why, sizeof(why));
    if (crc == -2) {
        aborted(d, t);
        goto out;
    }
    if (crc != 0) {
        dl_set_state(d, t, "failed", why);
        goto out;
    }
    struct stat sb;
    if (stat(out, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(why, sizeof(why), "the converter exited without writing %s ({output})", file);
        dl_set_state(d, t, "failed", why);
        goto out;
    }
    char *id = dl_choose_id(d, file);
    if (!id) {
        dl_set_state(d, t, "failed", "no model id can be made from the output's name");
        goto out;
    }
    pthread_mutex_lock(&d->mu);
    free(t->model_id);
    t->model_id = id;
    pthread_mutex_unlock(&d->mu);
    char *mdir = cm_xasprintf("%s/%s", d->dir, id);
    cm_mkdir_p(mdir, 0755);
    final = cm_xasprintf("%s/%s", mdir, file);
    free(mdir);
    if (rename(out, final) != 0) {
        snprintf(why, sizeof(why), "cannot move the output to %s: %s", final, strerror(errno));
        dl_set_state(d, t, "failed", why);
        goto out;
    }
    char osha[65] = "";
    add_model(d, t, &final, &osha, 1);
out:
    /* the sources are not needed after a final state (a cancel removed
     * them already; a stop keeps them to resume) */
    if (strcmp(t->state, "ready") == 0 || strcmp(t->state, "failed") == 0)
        rm_tree(work);
    if (have_we)
        wordfree(&we);
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
    for (size_t i = 0; i < t->nfiles; i++)
        free(locals[i]);
    free(locals);
    free(sha);
    free(out);
    free(final);
    free(file);
    free(work);
    free(src);
    free(outdir);
}

void dl_run(rt_downloads_t *d, dl_task_t *t)
{
    if (atomic_load(&t->cancel)) {
        aborted(d, t);
        return;
    }
    pthread_mutex_lock(&d->mu);
    t->rate_ms = 0;
    t->speed_bps = 0;
    t->eta_s = -1;
    pthread_mutex_unlock(&d->mu);
    if (t->convert) {
        if (!d->converter) {
            dl_set_state(d, t, "failed", DL_NO_CONVERTER);
            return;
        }
        run_convert(d, t);
        return;
    }
    dl_set_state(d, t, "downloading", NULL);
    run_download(d, t);
}
