"""Issue 11, items 4-6: SCAN cursors, CONFIG and ACL/SLOWLOG through the proxy.

SCAN cursors a JavaScript client can hold (<= 2^53 - 1) and no empty page
just because one master has no match; CONFIG SET/GET requirepass as the
proxy's own client password (the nodes' credentials untouched), CONFIG SET
to every node, CONFIG RESETSTAT resetting ringslot's INFO counters; ACL
writes on every node (replicas too), ACL WHOAMI from the proxy, refusal of
changes to the user ringslot connects as; SLOWLOG merged over the masters.

Tests that change node credentials use make_cluster; the rest share the
session cluster and put back what they change."""

import os

import pytest

from helpers import RespClient, RespError, HOST, set_keys, unique

JS_MAX = 2 ** 53 - 1
PASSWORD = "rs-own-Secret-58"
NOAUTH = "NOAUTH Authentication required."


# --- SCAN ---------------------------------------------------------------------------

def test_scan_cursors_fit_a_javascript_number(ringslot):
    r = ringslot.client()
    prefix = unique("scanjs")
    keys = {(prefix + str(i)).encode() for i in range(500)}
    set_keys(r, keys)
    cursor, seen, cursors = 0, [], []
    while True:
        cursor, batch = r.scan(cursor, match=prefix + "*", count=10)
        cursors.append(cursor)
        seen += batch
        if cursor == 0:
            break
    assert max(cursors) <= JS_MAX, max(cursors)
    assert len(cursors) > 10
    assert set(seen) == keys
    assert set(r.scan_iter(match=prefix + "*", count=10)) == keys
    # a cursor above 2^53 - 1 is not one ringslot handed out
    with pytest.raises(Exception, match="invalid cursor"):
        r.scan(2 ** 60)
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.delete(k)
    pipe.execute()


def test_scan_goes_on_past_a_master_with_no_match(cluster, ringslot):
    """Every key in one slot, so on one master: no page is empty with a
    non-zero cursor just because another master had nothing."""
    r = ringslot.client()
    tag = "{%s}" % unique("hop")
    keys = {("%s%d" % (tag, i)).encode() for i in range(20)}
    for k in keys:
        r.set(k, 1)
    cursor, seen, pages = 0, [], []
    while True:
        cursor, batch = r.scan(cursor, match=tag + "*", count=100000)
        pages.append((cursor, len(batch)))
        seen += batch
        if cursor == 0:
            break
    assert set(seen) == keys
    assert all(n > 0 or c == 0 for c, n in pages), pages
    assert len(pages) <= 2, pages
    for k in keys:
        r.delete(k)


# --- CONFIG -------------------------------------------------------------------------

def node_config(cl, port, name):
    reply = cl.execute(port, "CONFIG", "GET", name)
    return dict(zip(reply[::2], reply[1::2])).get(name.encode())


def test_config_set_requirepass_is_the_proxys_own(make_cluster, make_ringslot):
    cl = make_cluster(masters=3, replicas=1)
    rs = make_ringslot(cl)
    before = RespClient(HOST, rs.port)
    assert before.command("SET", "rp:k", "v") == "OK"
    with rs.raw() as c:
        assert c.command("CONFIG", "SET", "requirepass", PASSWORD) == "OK"
        # this connection (and any made before) stays signed in, as in Redis
        assert c.command("GET", "rp:k") == b"v"
    with rs.raw() as c:  # a new connection needs the proxy's password
        assert c.command("GET", "rp:k") == RespError(NOAUTH)
        assert c.command("AUTH", "wrong") == RespError(
            "WRONGPASS invalid username-password pair or user is disabled.")
        assert c.command("AUTH", PASSWORD) == "OK"
        assert c.command("GET", "rp:k") == b"v"
    with rs.raw() as c:
        assert c.command("AUTH", "default", PASSWORD) == "OK"
        for i in range(20):  # every master, over links made after the change
            assert c.command("SET", "rp:%d" % i, i) == "OK"
        assert c.command("ACL", "WHOAMI") == b"default"
        assert c.command("CONFIG", "GET", "requirepass") == [b"requirepass", PASSWORD.encode()]
        got = c.command("CONFIG", "GET", "require*")
        assert dict(zip(got[::2], got[1::2]))[b"requirepass"] == PASSWORD.encode()
        assert c.command("CONFIG", "SET", "requirepass", "x", "maxmemory", "0") == RespError(
            "ERR requirepass is ringslot's own client password: CONFIG SET it alone, "
            "without other parameters")
    assert before.command("GET", "rp:k") == b"v"
    before.close()
    # the nodes keep their own (empty) password
    for port in cl.ports:
        assert node_config(cl, port, "requirepass") == b"", port
    with rs.raw() as c:
        assert c.command("HELLO", "3", "AUTH", "default", PASSWORD)[b"proto"] == 3
        assert c.command("CONFIG", "GET", "requirepass") == {b"requirepass": PASSWORD.encode()}
    r = rs.client(password=PASSWORD)
    assert r.get("rp:k") == b"v"
    assert r.config_set("requirepass", "") is True
    r.close()
    with rs.raw() as c:
        assert c.command("GET", "rp:k") == b"v"


def test_config_set_reaches_every_node(make_cluster, make_ringslot):
    """masterauth is what replicas use towards their masters (not ringslot's
    credential): like every CONFIG SET it goes to masters and replicas."""
    cl = make_cluster(masters=3, replicas=1)
    rs = make_ringslot(cl)
    r = rs.client()
    assert r.config_set("masterauth", "repl-Secret-7") is True
    assert r.config_set("maxmemory-samples", "7") is True
    for port in cl.ports:
        assert node_config(cl, port, "masterauth") == b"repl-Secret-7", port
        assert node_config(cl, port, "maxmemory-samples") == b"7", port
    assert r.config_set("masterauth", "") is True


def info_stats(r):
    return r.info("stats")


def test_config_resetstat_resets_the_proxys_counters(ringslot):
    r = ringslot.client()
    for i in range(50):
        r.ping()
    assert info_stats(r)["total_commands_processed"] > 50
    assert r.config_resetstat() is True
    s = info_stats(r)
    # the INFO call itself (and redis-py's own handshake) may count
    assert s["total_commands_processed"] <= 3, s
    assert s["total_net_input_bytes"] < 1000, s
    assert s["total_connections_received"] <= 1, s
    r.close()


# --- ACL ----------------------------------------------------------------------------

def test_acl_writes_reach_every_node(cluster, ringslot):
    users = ["rs_acl_%s_%d" % (os.urandom(3).hex(), i) for i in range(3)]
    r = ringslot.client()
    try:
        for u in users:
            assert r.execute_command("ACL", "SETUSER", u, "on", ">pw-" + u, "~%s:*" % u,
                                     "+@all") in (b"OK", "OK", True)
        for port in cluster.ports:  # masters and replicas
            listed = cluster.execute(port, "ACL", "USERS")
            assert all(u.encode() in listed for u in users), (port, listed)
        answers = {tuple(r.execute_command("ACL", "USERS")) for _ in range(6)}
        assert len(answers) == 1
        assert all(u.encode() in next(iter(answers)) for u in users)
        lists = {tuple(r.execute_command("ACL", "LIST")) for _ in range(6)}
        assert len(lists) == 1
        got = {repr(r.execute_command("ACL", "GETUSER", users[0])) for _ in range(6)}
        assert len(got) == 1 and "None" not in got.pop()
        assert r.execute_command("ACL", "WHOAMI") == b"default"
        with ringslot.raw() as c:
            assert c.command("AUTH", users[1], "pw-" + users[1]) == "OK"
            assert c.command("ACL", "WHOAMI") == users[1].encode()
            assert c.command("SET", "%s:k" % users[1], "v") == "OK"
            assert c.command("ACL", "WHOAMI", "x") == RespError(
                "ERR wrong number of arguments for 'acl|whoami' command")
        refused = ("ERR ringslot connects to the nodes as ACL user 'default': change that "
                   "user on the nodes themselves (and ringslot's --auth), not through ringslot")
        with ringslot.raw() as c:
            assert c.command("ACL", "SETUSER", "default", "resetpass") == RespError(refused)
            assert c.command("ACL", "DELUSER", users[0], "default") == RespError(refused)
        assert r.execute_command("ACL", "DELUSER", *users) == 3
        for port in cluster.ports:
            listed = cluster.execute(port, "ACL", "USERS")
            assert not any(u.encode() in listed for u in users), (port, listed)
        r.delete("%s:k" % users[1])
    finally:
        for port in cluster.ports:
            cluster.execute(port, "ACL", "DELUSER", *users)


# --- SLOWLOG ------------------------------------------------------------------------

BUSY = """local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat
  local n = redis.call('TIME')
until n[1] * 1000000 + n[2] - start > tonumber(ARGV[1])
return 1"""


def key_on_each_master(cluster):
    """{master port: a key it serves}."""
    found, i = {}, 0
    while len(found) < len(cluster.masters()):
        k = "slow:%d:%d" % (os.getpid(), i)
        found.setdefault(cluster.master_for_key(k), k)
        i += 1
    return found


def test_slowlog_merged_over_the_masters(cluster, ringslot):
    masters = cluster.masters()
    threshold = int(node_config(cluster, masters[0], "slowlog-log-slower-than"))
    if threshold < 0:
        pytest.skip("the slow log is off on this cluster")
    r = ringslot.client()
    assert r.slowlog_reset() is True
    for port in masters:
        assert cluster.execute(port, "SLOWLOG", "LEN") == 0, port
    keys = key_on_each_master(cluster)
    for port in masters:  # one slow call per master, oldest first
        r.eval(BUSY, 1, keys[port], threshold + 5000)
    assert r.slowlog_len() == len(masters)
    raw = r.execute_command("SLOWLOG", "GET")
    assert len(raw) == len(masters)
    stamps = [e[1] for e in raw]
    assert stamps == sorted(stamps, reverse=True)
    assert len({e[0] for e in raw}) == len(raw)  # ids unique over the masters
    assert sorted(e[3][3] for e in raw) == sorted(k.encode() for k in keys.values())
    newest = r.execute_command("SLOWLOG", "GET", 2)
    assert newest == raw[:2]
    assert r.execute_command("SLOWLOG", "GET", -1) == raw
    assert r.slowlog_reset() is True
    assert r.slowlog_len() == 0
    for port in masters:
        assert cluster.execute(port, "SLOWLOG", "LEN") == 0, port
