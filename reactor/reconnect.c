/* reconnect.c: Twisted's ReconnectingClientFactory around an inner factory.
 *
 * The reconnecting factory forwards build_protocol, start and stop to the
 * inner factory, and its connection_failed / connection_lost hooks (after
 * calling the inner factory's, if any) schedule the next attempt:
 *
 *   retries += 1; past max_retries (when >= 0): give up;
 *   delay = min(delay * factor, max_delay);  then, when jitter != 0,
 *   delay += delay * jitter * z, z a normal-ish deviate (below), at least 0;
 *   connector connects again after delay.
 *
 * So the first retry waits initial * factor (2.718 s by default), the
 * jittered delay compounds into the next one, and a jittered delay may exceed
 * max_delay, all as in Twisted.
 *
 * Rounding. Delays are integer nanoseconds. Each step computes delay * factor
 * in double precision from the integer delay and rounds to the nearest
 * nanosecond (halves away from zero); a product at or above max_delay is
 * max_delay exactly. With jitter 0 and the defaults the delays are
 * 2718281828, 7389056098, 20085536921, 54598150027, 148413159086,
 * 403428793448, 1096633158307, 2980957986712 ns, then 3600 s: Twisted's
 * measured 2.718, 7.389, 20.086, 54.598, 148.413, 403.429, 1096.633,
 * 2980.958, 3600 to the millisecond. Each is within a microsecond of
 * 1e9 * e^k: the error of step k is at most (e^k - 1) / (e - 1) / 2 ns of
 * accumulated rounding (330 ns at k = 8 here).
 *
 * Jitter. Twisted draws random.normalvariate(delay, delay * jitter) from the
 * process-global generator. Here the deviate comes from one draw v in
 * [0, 256) through weft_reactor_random (the simulator's choice source, the
 * real reactor's own generator), labelled "reconnect.jitter". v selects a
 * tabulated standard-normal quantile: z = Q[v / 2], negated when v is odd,
 * where Q[i] = the inverse normal CDF at 0.5 + i / 256, in millionths (so
 * Q[0] = 0 and Q[127] = 2.660067). The 256 values are equally likely under a
 * uniform v, symmetric around 0, with a standard deviation of 0.979 and
 * tails cut at 2.66 sigma. Value 0, the choice source's default, means no
 * jitter at all, so shrinking a failing run removes jitter first.
 */
#include "reactor/reactor_internal.h"

#define RC_JITTER_CHOICES 256u
#define RC_JITTER_LABEL "reconnect.jitter"

/* Standard-normal quantiles at 0.5 + i/256, in millionths (see above). */
static const int32_t rc_quantile_u[RC_JITTER_CHOICES / 2] = {
    0,       9792,    19584,   29379,   39176,   48977,   58783,   68594,
    78412,   88238,   98072,   107916,  117770,  127635,  137513,  147405,
    157311,  167232,  177170,  187125,  197099,  207093,  217107,  227143,
    237202,  247285,  257394,  267528,  277690,  287881,  298102,  308355,
    318639,  328958,  339312,  349702,  360130,  370597,  381105,  391656,
    402250,  412890,  423576,  434311,  445097,  455934,  466825,  477772,
    488776,  499840,  510966,  522155,  533410,  544733,  556126,  567591,
    579132,  590751,  602449,  614231,  626099,  638056,  650104,  662248,
    674490,  686834,  699283,  711842,  724514,  737304,  750215,  763253,
    776422,  789727,  803173,  816765,  830511,  844415,  858484,  872726,
    887147,  901754,  916557,  931563,  946782,  962223,  977898,  993816,
    1009990, 1026433, 1043158, 1060180, 1077516, 1095181, 1113194, 1131577,
    1150349, 1169537, 1189164, 1209261, 1229859, 1250992, 1272699, 1295022,
    1318011, 1341718, 1366204, 1391537, 1417797, 1445073, 1473468, 1503103,
    1534121, 1566689, 1601009, 1637325, 1675940, 1717228, 1761670, 1809892,
    1862732, 1921351, 1987428, 2063528, 2153875, 2266227, 2417559, 2660067,
};

/* Delays are kept below this so that later products and sums stay exact
 * enough and never overflow (about 146 years). */
#define RC_DELAY_CAP_NS (INT64_MAX / 2)

/* Nearest nanosecond, within [0, RC_DELAY_CAP_NS]. NaN (a NaN factor or
 * jitter) counts as 0: the conversion must never see it. */
static int64_t rc_round(double x)
{
    if (!(x > 0.0))
        return 0;
    if (x >= (double)RC_DELAY_CAP_NS)
        return RC_DELAY_CAP_NS;
    return (int64_t)(x + 0.5);
}

static weft_reconnecting *rc_of(weft_factory *f)
{
    return (weft_reconnecting *)(void *)f; /* factory is the first member */
}

static void rc_reconnect(void *ctx)
{
    weft_reconnecting *rc = ctx;
    weft_call_release(rc->pending);
    rc->pending = NULL;
    if (!rc->connector)
        return;
    (void)weft_connector_connect(rc->connector);
    /* An error here (already connecting, out of memory) leaves the connector
     * idle: no hook will run, so there is nothing further to schedule. */
}

static int64_t rc_next_delay(weft_reconnecting *rc)
{
    int64_t delay_ns;
    double product = (double)rc->delay_ns * rc->factor;
    if (product >= (double)rc->max_delay_ns)
        delay_ns = rc->max_delay_ns < 0 ? 0 : rc->max_delay_ns;
    else
        delay_ns = rc_round(product);
    if (rc->jitter != 0.0) {
        uint32_t v = weft_reactor_random(rc->reactor, RC_JITTER_CHOICES, RC_JITTER_LABEL);
        double z = (double)rc_quantile_u[(v >> 1) % (RC_JITTER_CHOICES / 2)] / 1e6;
        if (v & 1u)
            z = -z;
        delay_ns = rc_round((double)delay_ns + (double)delay_ns * rc->jitter * z);
    }
    return delay_ns;
}

static void rc_retry(weft_reconnecting *rc)
{
    if (!rc->continue_trying)
        return;
    rc->retries++;
    if (rc->max_retries >= 0 && rc->retries > rc->max_retries)
        return; /* give up */
    rc->delay_ns = rc_next_delay(rc);
    if (rc->pending) {
        (void)weft_call_cancel(rc->pending);
        weft_call_release(rc->pending);
    }
    /* NULL (out of memory): no retry is scheduled; the factory gives up. */
    rc->pending = weft_call_later(rc->reactor, rc->delay_ns, rc_reconnect, rc);
}

static weft_protocol *rc_build(weft_factory *f, const weft_address *peer)
{
    weft_reconnecting *rc = rc_of(f);
    return rc->inner->build_protocol(rc->inner, peer);
}

static void rc_start(weft_factory *f)
{
    weft__factory_do_start(rc_of(f)->inner);
}

static void rc_stop(weft_factory *f)
{
    weft__factory_do_stop(rc_of(f)->inner);
}

static void rc_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    weft_reconnecting *rc = rc_of(f);
    if (rc->inner->connection_failed)
        rc->inner->connection_failed(rc->inner, c, reason);
    if (rc->continue_trying) {
        rc->connector = c;
        rc_retry(rc);
    }
}

static void rc_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    weft_reconnecting *rc = rc_of(f);
    if (rc->inner->connection_lost)
        rc->inner->connection_lost(rc->inner, c, reason);
    if (rc->continue_trying) {
        rc->connector = c;
        rc_retry(rc);
    }
}

void weft_reconnecting_init(weft_reconnecting *rc, weft_reactor *r, weft_factory *inner)
{
    if (!rc)
        return;
    *rc = (weft_reconnecting){0};
    rc->factory.build_protocol = rc_build;
    rc->factory.start = rc_start;
    rc->factory.stop = rc_stop;
    rc->factory.connection_failed = rc_failed;
    rc->factory.connection_lost = rc_lost;
    rc->factory.ctx = inner ? inner->ctx : NULL;
    rc->inner = inner;
    rc->reactor = r;
    rc->initial_delay_ns = WEFT_NS_PER_S;
    rc->factor = 2.7182818284590451;
    rc->jitter = 0.119626565582;
    rc->max_delay_ns = 3600 * WEFT_NS_PER_S;
    rc->max_retries = -1;
    rc->delay_ns = rc->initial_delay_ns;
    rc->retries = 0;
    rc->continue_trying = true;
}

void weft_reconnecting_reset_delay(weft_reconnecting *rc)
{
    if (!rc)
        return;
    rc->delay_ns = rc->initial_delay_ns;
    rc->retries = 0;
    rc->continue_trying = true;
}

void weft_reconnecting_stop_trying(weft_reconnecting *rc)
{
    if (!rc)
        return;
    if (rc->pending) {
        (void)weft_call_cancel(rc->pending);
        weft_call_release(rc->pending);
        rc->pending = NULL;
    }
    rc->continue_trying = false;
    if (rc->connector)
        weft_connector_stop(rc->connector); /* a connect in progress fails now */
}

int weft_reconnecting_connect(weft_reconnecting *rc, const char *desc, weft_connector **out)
{
    if (out)
        *out = NULL;
    if (!rc || !rc->reactor || !rc->inner || !rc->inner->build_protocol)
        return WEFT_EINVAL;
    weft_connector *c = NULL;
    int err = weft_connect_factory(rc->reactor, desc, &rc->factory, &c);
    if (err)
        return err;
    rc->connector = c;
    if (out)
        *out = c;
    return WEFT_OK;
}
