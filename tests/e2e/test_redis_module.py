"""duewatch's Redis module (redis_module/duewatch_module.c): DUEWATCH.APPLY
takes apply_effects.lua's arguments and must answer and write exactly as the
script does; what it writes reaches an AOF and a replica as plain commands,
read by a Redis without the module; the daemon writes through it when Redis
has it and through the script otherwise, with the same outcome."""

import re

import redis

import duewatch_testlib as lib
import events as ev
from ingest_checks import EVENT_TOPIC, assert_counters_exact, wait_applied

ARGS_VERSION = re.search(r"#define SCRIPT_ARGS_VERSION (\d+)",
                         (lib.REPO_ROOT / "include" / "formats.h").read_text()).group(1)
SCRIPT = (lib.REPO_ROOT / "daemon" / "lua" / "apply_effects.lua").read_text().replace(
    "@SCRIPT_ARGS_VERSION@", ARGS_VERSION)


def dump(client):
    """Every key: its type, value and whether it expires (TTL to the minute)."""
    state = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key)
        value = {"string": client.get, "hash": client.hgetall, "set": client.smembers,
                 "zset": lambda k: client.zrange(k, 0, -1, withscores=True)}[kind](key)
        ttl = client.ttl(key)
        state[key] = (kind, value, -1 if ttl < 0 else round(ttl / 60))
    return state


def call(client, via, args):
    """apply_effects' call through the script (via "script") or the module:
    its reply, or ("error", first word, message without the script's suffix)."""
    try:
        if via == "script":
            return client.evalsha(client.script_load(SCRIPT), 0, *args)
        return client.execute_command("DUEWATCH.APPLY", *args)
    except redis.exceptions.ResponseError as error:
        message = re.sub(r" script: .*$", "", str(error), flags=re.S)
        return ("error", message.split()[0], message.replace("this script reads",
                                                             "this module reads"))


def command(name, *args):
    return [name, str(len(args)), *args]


def calls():
    """(title, ARGV) in order, each against the state the ones before left."""
    v = ARGS_VERSION
    writes = (command("MSET", "c:1", "@5|a|b", "c:2", "x")
              + command("HSET", "h", "f", "1", "g", "2")
              + command("ZADD", "z", "10", "m1", "20.5", "m2", "-3", "m3")
              + command("HINCRBYS", "n", "a", "1", "b", "-4", "a", "2")
              + command("INCRBY", "i", "7")
              + command("EXPIRE", "n", "3600")
              + command("SADD", "s", "e1", "e2", "e1")
              + command("DISTINCT", "p", "cnt", "persons", "x|1", "x|2", "x|1"))
    return [
        ("writes of every kind", [v, "", "0", "0", *writes]),
        ("counters again, persons partly known, a member removed, a field deleted",
         [v, "", "0", "0",
          *command("HINCRBYS", "n", "a", "5", "c", "9"),
          *command("DISTINCT", "p", "cnt", "persons", "x|2", "x|3"),
          *command("ZREM", "z", "m1", "absent"),
          *command("HDEL", "h", "g", "absent"),
          *command("DISTINCT", "p", "cnt", "persons", "x|3")]),
        ("checks that hold", [v, "", "0", "4", "V", "c:1", "@5|a|b", "A", "c:9",
                              "H", "h", "f", "1", "h", "h", "g",
                              *command("DEL", "c:2")]),
        ("a string changed", [v, "", "0", "1", "V", "c:1", "@5|a|c", *command("DEL", "c:1")]),
        ("a key that should be absent", [v, "", "0", "1", "A", "c:1", *command("DEL", "c:1")]),
        ("a field changed", [v, "", "0", "1", "H", "h", "f", "2", *command("DEL", "h")]),
        ("a field that should be absent", [v, "", "0", "1", "h", "h", "f", *command("DEL", "h")]),
        ("a chain's first batch", [v, "fence:a", "1", "0", *command("SADD", "s", "e3")]),
        ("the chain's next", [v, "fence:a", "2", "0", *command("SADD", "s", "e4")]),
        ("a batch whose one ahead did not apply", [v, "fence:a", "4", "0",
                                                   *command("SADD", "s", "e5")]),
        ("a bucket still there is not forgotten", [v, "", "0", "0",
                                                   *command("FORGET", "z", "s", "m2")]),
        ("a bucket gone is", [v, "", "0", "0", *command("FORGET", "z", "gone", "m2")]),
        ("another version", ["1", "", "0", "0", *command("DEL", "s")]),
        ("a command not allowed", [v, "", "0", "0", *command("DEL", "s"),
                                   *command("FLUSHALL", "x")]),
        ("a malformed HINCRBYS", [v, "", "0", "0", *command("HINCRBYS", "n", "a")]),
        ("a count past the end", [v, "", "0", "0", "DEL", "3", "s"]),
        ("a score that is not a number, after one that is",
         [v, "", "0", "0", *command("ZADD", "z", "5", "m4", "x", "m5")]),
        ("a counter on a string", [v, "", "0", "0", *command("HINCRBYS", "c:1", "a", "1")]),
        ("a counter that is not a number", [v, "", "0", "0",
                                            *command("HSET", "h", "word", "abc"),
                                            *command("HINCRBYS", "h", "word", "1")]),
    ]


def test_the_module_answers_and_writes_as_the_script_does(redis_factory):
    """Each call through the script on one Redis and through the module on
    another: the same reply (errors by their text) and the same keys, values
    and expiries after each."""
    script_redis = redis_factory(module=False).client()
    module_redis = redis_factory(module=True).client()
    for title, args in calls():
        script_reply = call(script_redis, "script", args)
        module_reply = call(module_redis, "module", args)
        assert module_reply == script_reply, title
        assert dump(module_redis) == dump(script_redis), title
    # the last calls wrote nothing but what came before their error, as the script
    assert dump(module_redis)["n"] == ("hash", {"a": "8", "b": "-4", "c": "9"}, 60)
    assert dump(module_redis)["cnt"] == ("hash", {"persons": "3"}, -1)
    assert module_redis.execute_command("DUEWATCH.APPLY", ARGS_VERSION) == int(ARGS_VERSION)


def test_what_the_module_writes_replays_without_it(redis_factory):
    """A Redis with the module and an AOF, a replica without the module: after
    the calls the replica holds the same, and the AOF restarted in a Redis
    without the module too (counters as HSET of their value, expiries as
    PEXPIREAT)."""
    primary = redis_factory(appendonly=True, module=True)
    replica = redis_factory(module=False, extra_args=("--replicaof", "127.0.0.1",
                                                      str(primary.port)))
    client, replica_client = primary.client(), replica.client()
    for _, args in calls():
        call(client, "module", args)
    expected = dump(client)
    lib.wait_until(lambda: dump(replica_client) == expected, 15,
                   message="the replica holds what the module wrote")
    client.execute_command("CONFIG", "SET", "appendfsync", "always")
    client.set("last", "1")
    primary.stop()
    restarted = lib.RedisServer(primary.directory, appendonly=True, module=False).start()
    try:
        replayed = restarted.client()
        replayed.delete("last")
        assert dump(replayed) == expected
    finally:
        restarted.stop()


def clock_and_counter_state(client):
    """What events leave in Redis, but for what each run names or times its
    own way (fence chains, the generation marker, the instants claimed up to)."""
    return {key: value for key, value in dump(client).items()
            if not key.startswith(("dw:fence:", "dw:generation", "dw:claimed"))}


def run_events(daemon_factory, mock_cluster_factory, server, events):
    cluster = mock_cluster_factory()
    daemon = daemon_factory({"batch_linger_ms": 20}, redis=server, cluster=cluster,
                            wait_for=r"kafka: consuming duewatch\.events", timeout=30)
    lib.produce(cluster.bootstrap, EVENT_TOPIC, ev.to_messages(events), timeout=60)
    client = server.client()
    wait_applied(cluster.bootstrap, client, timeout=120)
    daemon.stop()
    return client, daemon.log()


def test_the_daemon_writes_through_the_module_when_redis_has_it(daemon_factory,
                                                                 mock_cluster_factory,
                                                                 redis_factory, rng):
    """The same 600 events (clocks started, extended and stopped among them)
    into a Redis with the module and into one without: the daemon says which
    way it writes, the counters are exact and every key is the same."""
    now = ev.suite_now_ms()
    events = ev.realistic_stream(rng, now, cases=80, units=4, window_days=3)[:600]
    states = {}
    for module in (True, False):
        server = redis_factory(module=module)
        client, log = run_events(daemon_factory, mock_cluster_factory, server, events)
        way = "the duewatch module" if module else "apply_effects.lua"
        assert f"ready (scripts loaded; writes through {way})" in log
        calls = client.info("commandstats").get("cmdstat_duewatch.apply", {}).get("calls", 0)
        assert (calls > 0) == module
        assert_counters_exact(client, events)
        states[module] = clock_and_counter_state(client)
    differ = {key: (states[True].get(key), states[False].get(key))
              for key in states[True].keys() | states[False].keys()
              if states[True].get(key) != states[False].get(key)}
    assert not differ, differ


def test_a_user_held_to_its_keys_is_held_to_them_through_the_module(redis_factory):
    """The module names the keys of each call to Redis, so an ACL user with
    ~dw:* writes dw: keys through it and is refused any other (fence, check
    and command keys alike), as the script's calls were refused."""
    client = redis_factory(module=True).client()
    client.execute_command("ACL", "SETUSER", "duewatch", "on", ">pw", "resetkeys", "~dw:*",
                           "-@all", "+duewatch.apply")
    user = redis.Redis(host="127.0.0.1", port=client.connection_pool.connection_kwargs["port"],
                       username="duewatch", password="pw", decode_responses=True)
    v = ARGS_VERSION
    assert user.execute_command("DUEWATCH.APPLY", v, "dw:fence:a", "1", "1", "A", "dw:c",
                                *command("MSET", "dw:c", "1", "dw:d", "2"),
                                *command("DEL", "dw:e", "dw:f")) == 2
    refused = [[v, "other", "1", "0", *command("DEL", "dw:c")],
               [v, "", "0", "1", "A", "other", *command("DEL", "dw:c")],
               [v, "", "0", "0", *command("MSET", "dw:c", "1", "other", "2")],
               [v, "", "0", "0", *command("DEL", "dw:c", "other")],
               [v, "", "0", "0", *command("DISTINCT", "dw:p", "other", "f", "m")],
               [v, "", "0", "0", *command("FORGET", "dw:z", "other", "m")]]
    for args in refused:
        try:
            user.execute_command("DUEWATCH.APPLY", *args)
            raise AssertionError(f"not refused: {args}")
        except redis.exceptions.NoPermissionError:
            pass
    assert client.mget("dw:c", "dw:d", "other") == ["1", "2", None]
