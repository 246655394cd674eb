/* Prometheus text exposition of the daemon's counters (see metrics.h).  Only
 * reads what the modules keep in memory: a scrape never waits on Redis or
 * Kafka. */
#include "metrics.h"

#include "alerts.h"
#include "event.h"
#include "ingest.h"
#include "kafka_consumer.h"
#include "process_metrics.h"
#include "redis_eviction.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stddef.h>

static void header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct evbuffer *out, const char *name, const char *help, uint64_t value)
{
    header(out, name, "counter", help);
    evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, value);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, int64_t value)
{
    header(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %" PRId64 "\n", name, value);
}

static void histogram(struct evbuffer *out, const char *name, const char *help,
                      const double *bounds, size_t count, const uint64_t *buckets, double sum)
{
    header(out, name, "histogram", help);
    for (size_t i = 0; i < count; i++)
        evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i],
                            buckets[i]);
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, buckets[count]);
    evbuffer_add_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, sum, name,
                        buckets[count]);
}

static void write_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
    evbuffer_add_printf(arg, "duewatch_consumer_lag_messages{topic=\"%s\",partition=\"%" PRId32
                             "\"} %" PRId64 "\n",
                        topic, partition, lag);
}

static void write_alert_count(void *arg, const char *rule, const char *level, const char *state,
                              uint64_t count)
{
    evbuffer_add_printf(arg,
                        "duewatch_alerts_emitted_total{rule=\"%s\",level=\"%s\",state=\"%s\"} "
                        "%" PRIu64 "\n",
                        rule, level, state, count);
}

static void write_running(void *arg, const char *rule, int64_t running)
{
    evbuffer_add_printf(arg, "duewatch_clocks_running{rule=\"%s\"} %" PRId64 "\n", rule, running);
}

static void write_overdue(void *arg, const char *rule, int64_t overdue)
{
    evbuffer_add_printf(arg, "duewatch_clocks_overdue{rule=\"%s\"} %" PRId64 "\n", rule, overdue);
}

/* A gauge in seconds (fractional); left out when value < 0 (unknown). */
static void seconds_gauge(struct evbuffer *out, const char *name, const char *help, double value)
{
    if (value < 0)
        return;
    header(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %.3f\n", name, value);
}

/* duewatch_build_info and the standard process_* metrics. */
static void write_process(struct evbuffer *out)
{
    header(out, "duewatch_build_info", "gauge",
           "Always 1; the labels name the daemon's version and the libraries it runs with.");
    evbuffer_add_printf(out,
                        "duewatch_build_info{version=\"%s\",librdkafka=\"%s\",libevent=\"%s\","
                        "hiredis=\"%d.%d.%d\"} 1\n",
                        DUEWATCH_VERSION, rd_kafka_version_str(), event_get_version(),
                        HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    struct process_sample sample;
    process_metrics_read(&sample);
    if (sample.cpu_seconds >= 0) {
        header(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        evbuffer_add_printf(out, "process_cpu_seconds_total %.6f\n", sample.cpu_seconds);
    }
    if (sample.resident_bytes >= 0)
        gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
              sample.resident_bytes);
    if (sample.virtual_bytes >= 0)
        gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
              sample.virtual_bytes);
    if (sample.open_fds >= 0)
        gauge(out, "process_open_fds", "Number of open file descriptors.", sample.open_fds);
    if (sample.max_fds >= 0)
        gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
              sample.max_fds);
    seconds_gauge(out, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.",
                  sample.start_time_seconds);
}

static void write_parked(void *arg, const char *rule, int64_t parked)
{
    evbuffer_add_printf(arg, "duewatch_clocks_parked{rule=\"%s\"} %" PRId64 "\n", rule, parked);
}

const char *metrics_not_ready_reason(const struct metrics_sources *sources)
{
    struct ingest_stats stats;
    ingest_get_stats(sources->ingest, &stats);
    return stats.redis_state.lost
               ? "redis state lost (an empty Redis?): consumption held until recovered "
                 "(duewatch recover)"
           : stats.redis_state.readonly ? "redis refuses writes (READONLY: a replica?)"
           : !stats.redis_ready         ? "redis not connected"
           : !stats.assigned            ? "no partition assignment yet"
           : (stats.flow.paused && stats.batches.inflight_messages == 0)
               ? "consumption paused"
               : NULL;
}

/* Events consumed, applied and dead-lettered; batches, Redis and Kafka. */
static void write_event_metrics(struct evbuffer *out, const struct metrics_sources *sources,
                                const struct ingest_stats *stats)
{
    counter(out, "duewatch_messages_consumed_total", "Kafka messages consumed.",
            stats->messages_consumed);
    counter(out, "duewatch_events_applied_total",
            "Events whose effects were applied in Redis (first delivery).",
            stats->batches.events_applied);
    counter(out, "duewatch_events_duplicate_total",
            "Events seen again (redelivered) and not applied twice.",
            stats->batches.events_duplicate);
    counter(out, "duewatch_clock_ticks_total", "clock.tick events consumed.", stats->ticks);
    header(out, "duewatch_events_rejected_total", "counter",
           "Messages sent to the dead-letter topic, by reason.");
    for (int reason = 1; reason < REJECT_COUNT; reason++)
        evbuffer_add_printf(out, "duewatch_events_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                            event_reject_name((enum event_reject)reason),
                            stats->dead_letters.sent[reason]);
    counter(out, "duewatch_dead_letter_delivery_failures_total",
            "Dead letters the producer failed to deliver (produced again).",
            stats->dead_letters.delivery_failures);
    counter(out, "duewatch_batches_applied_total", "Batches applied in Redis.",
            stats->batches.batches_applied);
    histogram(out, "duewatch_batch_events", "Events per batch applied.",
              batch_queue_size_bounds, BATCH_QUEUE_SIZE_BUCKETS, stats->batches.size_buckets,
              (double)stats->batches.batch_events_total);
    histogram(out, "duewatch_redis_batch_duration_seconds",
              "Round trip of one batch script call to Redis.", batch_queue_latency_bounds,
              BATCH_QUEUE_LATENCY_BUCKETS, stats->batches.latency_buckets,
              stats->batches.latency_sum_seconds);
    counter(out, "duewatch_redis_errors_total",
            "Batch calls that failed (connection lost or error reply) and were retried.",
            stats->batches.redis_errors);
    counter(out, "duewatch_redis_connects_total", "Successful Redis connections (with set-up).",
            stats->redis_connects);
    gauge(out, "duewatch_ready", "1 when /readyz answers 200 (ready), else 0.",
          metrics_not_ready_reason(sources) == NULL);
    gauge(out, "duewatch_redis_up",
          "1 when Redis is connected, set up, holds the daemon's state and accepts writes.",
          stats->redis_ready);
    gauge(out, "duewatch_redis_state_lost",
          "1 while Redis has lost the daemon's state (consumption held until recovered).",
          stats->redis_state.lost);
    counter(out, "duewatch_redis_rollbacks_total",
            "Redis rollbacks seen (positions behind what was applied): partitions consumed again.",
            stats->redis_state.rollbacks);
    counter(out, "duewatch_consumer_errors_total", "Errors reported by the Kafka consumer.",
            stats->consumer_errors);
    gauge(out, "duewatch_consumer_paused", "1 while consumption is paused.", stats->flow.paused);
    counter(out, "duewatch_consumer_pauses_total", "Times consumption was paused.",
            stats->flow.pauses);
    gauge(out, "duewatch_inflight_messages", "Messages consumed and not yet applied.",
          (int64_t)stats->batches.inflight_messages);
    header(out, "duewatch_consumer_lag_messages", "gauge",
           "High watermark minus consumer position, per assigned partition.");
    kafka_consumer_for_each_lag(sources->consumer, write_lag, out);
}

/* Clocks and alerts (read from Redis), the calendar, the deadline errors. */
static void write_clock_metrics(struct evbuffer *out, const struct metrics_sources *sources,
                                const struct ingest_stats *stats,
                                const struct alerts_stats *alerts)
{
    header(out, "duewatch_clocks_running", "gauge",
           "Deadline clocks running, per rule (all instances; read from Redis).");
    alerts_for_each_running(sources->alerts, write_running, out);
    header(out, "duewatch_clocks_overdue", "gauge",
           "Deadline clocks past their deadline and not stopped, per rule (all instances; read "
           "from Redis).");
    alerts_for_each_overdue(sources->alerts, write_overdue, out);
    header(out, "duewatch_clocks_parked", "gauge",
           "Clocks parked because their rule is not configured, per rule (all instances; read "
           "from Redis); they resume when it is configured again.");
    alerts_for_each_parked(sources->alerts, write_parked, out);
    header(out, "duewatch_alerts_emitted_total", "counter",
           "Alerts delivered to the alert topic by this instance, per rule, level and state.");
    alerts_for_each_count(sources->alerts, write_alert_count, out);
    counter(out, "duewatch_alert_claims_total", "Claim script calls.", alerts->claims);
    counter(out, "duewatch_snapshots_total", "End-of-day snapshots (running and overdue clocks "
            "per rule and unit) written by this instance.", alerts->snapshots);
    counter(out, "duewatch_alert_delivery_failures_total",
            "Alert deliveries that failed (produced again).", alerts->delivery_failures);
    counter(out, "duewatch_outbox_resent_total", "Outbox entries sent again after a restart "
            "or rebalance.", alerts->outbox_resent);
    gauge(out, "duewatch_outbox_alerts", "Alerts claimed and not yet acknowledged by Kafka.",
          (int64_t)alerts->in_flight);
    counter(out, "duewatch_calendar_gaps_total",
            "Working-day look-ups outside the holiday calendar (Monday-Friday assumed).",
            alerts->calendar_gaps);
    counter(out, "duewatch_due_entries_dropped_total",
            "Due-index entries dropped by a claim: no clock record, or one this daemon cannot "
            "read (logged).", alerts->due_entries_dropped);
    gauge(out, "duewatch_calendar_official_end_seconds",
          "End of the holiday calendar's official years (Unix time); later days are provisional.",
          alerts->calendar.official_end_ms / 1000);
    gauge(out, "duewatch_calendar_end_seconds",
          "End of the holiday calendar, provisional years included (Unix time).",
          alerts->calendar.end_ms / 1000);
    gauge(out, "duewatch_calendar_official_ending",
          "1 when the calendar's official years end within 60 days: add the next year.",
          alerts->calendar.official_ending);
    counter(out, "duewatch_provisional_clocks_recomputed_total",
            "Provisional clocks recomputed with the calendar in force (after a reload or a "
            "take-over).",
            alerts->provisional_recomputed);
    counter(out, "duewatch_provisional_clock_errors_total",
            "Provisional clocks that could not be recomputed (logged; they keep their deadline).",
            alerts->provisional_failed);
    counter(out, "duewatch_clock_errors_total",
            "Events whose deadline could not be computed (dead-lettered).", stats->clock_errors);
    counter(out, "duewatch_events_misrouted_total",
            "Events (applied) whose Kafka message key is not the key the contract names for "
            "their type (their clock's ref or case).",
            stats->misrouted);
    if (alerts->event_time_ms >= 0)
        seconds_gauge(out, "duewatch_event_time_seconds",
                      "Event time reached (event mode; Unix time).",
                      (double)alerts->event_time_ms / 1000.0);
}

/* Reloads, the start time, and the process's own figures. */
static void write_process_metrics(struct evbuffer *out, const struct process_counters *process)
{
    header(out, "duewatch_reloads_total", "counter", "Configuration reloads, by result.");
    evbuffer_add_printf(out, "duewatch_reloads_total{result=\"applied\"} %" PRIu64 "\n",
                        process->reloads_applied);
    evbuffer_add_printf(out, "duewatch_reloads_total{result=\"failed\"} %" PRIu64 "\n",
                        process->reloads_failed);
    header(out, "duewatch_start_time_seconds", "gauge", "Start time of the process (Unix time).");
    evbuffer_add_printf(out, "duewatch_start_time_seconds %.3f\n",
                        (double)process->started_at_ms / 1000.0);
    write_process(out);
}

/* Whether Redis may evict, and has: from its first check on (redis_eviction.h). */
static void write_eviction_metrics(struct evbuffer *out, const struct redis_eviction *eviction)
{
    struct redis_eviction_stats stats;
    redis_eviction_get_stats(eviction, &stats);
    if (!stats.known)
        return;
    gauge(out, "duewatch_redis_may_evict",
          "1 when Redis may evict keys when full (maxmemory set, maxmemory-policy not "
          "noeviction): an evicted key of duewatch's is lost without a word.",
          stats.may_evict);
    gauge(out, "duewatch_redis_evicted_keys",
          "Keys Redis has evicted since it started or its last CONFIG RESETSTAT (INFO stats "
          "evicted_keys), any application's.",
          stats.evicted_keys);
}

void metrics_write(struct evbuffer *out, const struct metrics_sources *sources)
{
    struct ingest_stats stats;
    struct alerts_stats alerts;
    ingest_get_stats(sources->ingest, &stats);
    alerts_get_stats(sources->alerts, &alerts);
    write_event_metrics(out, sources, &stats);
    write_clock_metrics(out, sources, &stats, &alerts);
    write_eviction_metrics(out, sources->eviction);
    write_process_metrics(out, sources->process);
}
