/* bugs_jobs.c: planted bug "a write after the peer closed" (protocols/
 * bugs.h).
 *
 * Protocol bug-jobs is a half-close aware server: each line "JOB n" starts a
 * job that takes work=MS milliseconds (default 10) and then writes "DONE n".
 * When the peer closes its side, the buggy server closes the connection at
 * once, forgetting the jobs still running: a job that finishes before the
 * connection is fully gone writes on a closed transport (WEFT_ECLOSED, which
 * the scenario run reports as a write after close), and one that finishes
 * later is cancelled and never answered. Both happen only when the peer's
 * close overtakes the job. The fixed version ("fixed") closes after the last
 * running job has answered.
 *
 * Protocol bug-jobs-client is the peer of the story: it sends "JOB 1" on
 * connecting and closes close=MS milliseconds later (default 15), ignoring
 * what comes back (a closing connection stops reading, as in Twisted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/bugs.h"

#define JOBS_MAX 16

typedef struct jobs_conn jobs_conn;

typedef struct job {
    jobs_conn *jc;
    weft_call *call; /* NULL: slot free */
    long id;
} job;

typedef struct jobs_server {
    weft__bug_factory f; /* first: make returns &f.base */
    weft_reactor *r;
    bool fixed;
    long work_ms;
} jobs_server;

struct jobs_conn {
    weft__bug_conn c; /* first */
    job jobs[JOBS_MAX];
    size_t running;
    bool close_when_idle;
};

static void job_done(void *ctx)
{
    job *j = ctx;
    jobs_conn *jc = j->jc;
    weft_call_release(j->call);
    j->call = NULL;
    jc->running--;
    char line[48];
    snprintf(line, sizeof line, "DONE %ld", j->id);
    /* The buggy server may have closed already: the write is refused. */
    (void)weft__bug_send(&jc->c, line);
    if (jc->close_when_idle && jc->running == 0)
        weft__bug_close(&jc->c);
}

static void jobs_line(weft__bug_conn *c, const char *line, size_t len)
{
    jobs_conn *jc = (jobs_conn *)c;
    jobs_server *srv = c->owner;
    if (strncmp(line, "JOB ", 4) != 0)
        return;
    char *end;
    long id = strtol(line + 4, &end, 10);
    if (end == line + 4 || *end != '\0')
        return;
    for (size_t i = 0; i < JOBS_MAX; i++) {
        job *j = &jc->jobs[i];
        if (j->call)
            continue;
        j->jc = jc;
        j->id = id;
        j->call = weft_call_later(srv->r, srv->work_ms * WEFT_NS_PER_MS, job_done, j);
        if (j->call)
            jc->running++;
        return;
    }
    (void)weft__bug_send(c, "BUSY");
}

static void jobs_read_lost(weft__bug_conn *c)
{
    jobs_conn *jc = (jobs_conn *)c;
    jobs_server *srv = c->owner;
    if (srv->fixed && jc->running > 0) {
        jc->close_when_idle = true;
        return;
    }
    /* The bug: nothing more to read, so nothing more to do. */
    weft__bug_close(c);
}

static void jobs_destroy(weft__bug_conn *c)
{
    jobs_conn *jc = (jobs_conn *)c;
    for (size_t i = 0; i < JOBS_MAX; i++) {
        if (jc->jobs[i].call) {
            (void)weft_call_cancel(jc->jobs[i].call);
            weft_call_release(jc->jobs[i].call);
            jc->jobs[i].call = NULL;
        }
    }
}

static const weft__bug_conn_ops jobs_ops = {
    .line = jobs_line,
    .read_lost = jobs_read_lost,
    .destroy = jobs_destroy,
};

static weft_factory *jobs_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    long work = 10;
    if (weft__bug_arg_long(args, "work", &work) != WEFT_OK || work < 0 || work > 3600000) {
        snprintf(err, errlen, "bug-jobs: work=MS takes milliseconds (0 to 3600000)");
        return NULL;
    }
    jobs_server *srv = weft_calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&srv->f, &jobs_ops, srv, 0, sizeof(jobs_conn));
    srv->r = r;
    srv->fixed = weft__bug_fixed(args);
    srv->work_ms = work;
    return &srv->f.base;
}

static void jobs_destroy_factory(weft_factory *f)
{
    weft_free(f);
}

/* ------------------------------------------------------------ client */

typedef struct jobs_client {
    weft__bug_factory f; /* first */
    weft_reactor *r;
    long close_ms;
    weft__bug_conn *conn;
    weft_call *timer;
} jobs_client;

static void client_close(void *ctx)
{
    jobs_client *jc = ctx;
    weft_call_release(jc->timer);
    jc->timer = NULL;
    weft__bug_close(jc->conn);
}

static void client_made(weft__bug_conn *c)
{
    jobs_client *jc = c->owner;
    jc->conn = c;
    (void)weft__bug_send(c, "JOB 1");
    if (!jc->timer)
        jc->timer = weft_call_later(jc->r, jc->close_ms * WEFT_NS_PER_MS, client_close, jc);
}

static void client_lost(weft__bug_conn *c, const weft_failure *reason)
{
    jobs_client *jc = c->owner;
    if (jc->conn == c)
        jc->conn = NULL;
}

static const weft__bug_conn_ops client_ops = {.made = client_made, .lost = client_lost};

static weft_factory *client_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    long close_ms = 15;
    if (weft__bug_arg_long(args, "close", &close_ms) != WEFT_OK || close_ms < 0 ||
        close_ms > 3600000) {
        snprintf(err, errlen, "bug-jobs-client: close=MS takes milliseconds (0 to 3600000)");
        return NULL;
    }
    jobs_client *jc = weft_calloc(1, sizeof *jc);
    if (!jc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&jc->f, &client_ops, jc, 0, 0);
    jc->r = r;
    jc->close_ms = close_ms;
    return &jc->f.base;
}

const weft__bug weft__bug_jobs_client = {
    .protocol = "bug-jobs-client",
    .action = NULL,
    .summary = "sends a job and closes (the peer of bug-jobs)",
    .make = client_make,
    .destroy = jobs_destroy_factory,
    .start = NULL,
};

const weft__bug weft__bug_jobs = {
    .protocol = "bug-jobs",
    .action = NULL,
    .summary = "a write after the peer closed",
    .make = jobs_make,
    .destroy = jobs_destroy_factory,
    .start = NULL,
};
