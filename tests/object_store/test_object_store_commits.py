"""Object storage, unit tier: the Store contract on obstore's in-memory store, and the
ambiguity rule — a publish whose answer is lost (timeout, 5xx, a retried create that comes
back "already exists", a 409) never loses a commit and never publishes one twice.

The faults are injected below ObjectStore's error handling, where obstore raises, so what
is tested is the code that runs against a real bucket.
"""

from __future__ import annotations

import pickle
import threading
from collections import Counter

import pytest
from obstore.exceptions import AlreadyExistsError, GenericError

from helpers.bars import arrow_bars
from tickvault import ParquetDB
from tickvault.errors import ConfigError, ObjectStoreError
from tickvault.storage.core.object_store import ObjectStore


class ScriptedBucket(ObjectStore):
    """An ObjectStore whose conditional puts of log entries fail on a script.

    ``script`` is a list of faults, used one per conditional PUT of a log entry:
    ``"5xx-after"`` (the put lands, the answer is a 503), ``"timeout-before"`` (nothing
    lands), ``"timeout-after"`` (lands, the answer is lost), ``"retried-create"`` (lands,
    the client's retry of it gets "already exists"), ``"409"`` (S3's
    ConditionalRequestConflict, nothing lands), ``None`` (works).
    """

    def __init__(self, url: str, script: list[str | None], retry_timeout: float = 60) -> None:
        super().__init__(url, {"retry_timeout": retry_timeout})
        self.script = list(script)
        self.faults: Counter[str] = Counter()

    def __reduce__(self):  # pragma: no cover - never pickled
        raise TypeError("not picklable")

    def _put(self, key: str, data, mode: str) -> None:
        fault = self.script.pop(0) if mode == "create" and "/_log/" in key and self.script else None
        if fault is None:
            return super()._put(key, data, mode)
        self.faults[fault] += 1
        if fault in ("timeout-before", "409"):
            msg = "409 Conflict: ConditionalRequestConflict" if fault == "409" else "timed out"
            raise GenericError(f"Generic S3 error: PUT {key}: {msg}")
        super()._put(key, data, mode)  # the request reached the bucket
        if fault == "retried-create":
            raise AlreadyExistsError(f"Object at location {key} already exists")
        raise GenericError(f"Generic S3 error: PUT {key}: 503 Service Unavailable (or timeout)")


@pytest.fixture
def url(request) -> str:
    return f"memory://unit-{request.node.name[:40]}"


def test_the_store_contract_holds_on_an_object_store(url):
    store = ObjectStore(url)
    assert store.list("") == [] and store.stat("a/b.json") is None
    with pytest.raises(FileNotFoundError):
        store.get("a/b.json")
    with pytest.raises(FileNotFoundError):
        store.open_input("a/b.json")
    assert store.put_if_absent("a/b.json", b"0123456789") is True
    assert store.put_if_absent("a/b.json", b"other") is False
    assert store.get("a/b.json") == b"0123456789"
    store.put("a/b.json", b"abcdefghij")
    assert store.get_range("a/b.json", 3, 4) == b"defg"
    assert store.get_range("a/b.json", 8, 100) == b"ij"
    assert store.stat("a/b.json").size == 10
    with store.writer("a/c/d.parquet") as sink:
        sink.write(b"hello")
        assert not store.exists("a/c/d.parquet")  # nothing visible while writing
    with pytest.raises(RuntimeError), store.writer("a/c/e.parquet") as sink:
        sink.write(b"half")
        raise RuntimeError("writer died")
    assert sorted(store.list("a")) == ["b.json", "c"] and store.list("a/c") == ["d.parquet"]
    with store.open_input("a/c/d.parquet") as f:
        assert f.size() == 5 and f.read() == b"hello"
        f.seek(1)
        assert f.read(3) == b"ell"
    assert store.delete("a/b.json") is True and store.delete("a/b.json") is False


@pytest.mark.parametrize("kind", ["object", "local", "memory"])
def test_list_after_names_the_objects_after_a_name(url, kind, tmp_path):
    from tickvault.storage.core.store import LocalStore, MemoryStore

    store = {"object": lambda: ObjectStore(url), "local": lambda: LocalStore(tmp_path),
             "memory": MemoryStore}[kind]()  # fmt: skip
    for name in ("t/_log/01.json", "t/_log/02.json", "t/_log/02.checkpoint.json",
                 "t/_log/03.json", "t/_logs/05.json"):  # fmt: skip
        store.put(name, b"x")
    assert store.list_after("t/_log", "01.json") == ["02.checkpoint.json", "02.json", "03.json"]
    assert store.list_after("t/_log", "") == ["01.json", "02.checkpoint.json", "02.json", "03.json"]
    assert store.list_after("t/_log", "03.json") == []
    assert store.list_after("nothing/here", "") == []


def test_concurrent_creates_have_exactly_one_winner(url):
    store = ObjectStore(url)
    wins: list[int] = []
    barrier = threading.Barrier(12)

    def go(i: int) -> None:
        barrier.wait()
        if store.put_if_absent("t/_log/0.json", f"writer {i}".encode()):
            wins.append(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and store.get("t/_log/0.json") == f"writer {wins[0]}".encode()


FAULTS = ["5xx-after", "timeout-before", "timeout-after", "retried-create", "409"]


@pytest.mark.parametrize("fault", FAULTS)
def test_an_ambiguous_publish_is_neither_lost_nor_duplicated(url, fault):
    store = ScriptedBucket(url, [None, fault, fault, None, fault])  # create, then upserts
    db = ParquetDB(store=store, auto_compact=False)
    for i in range(4):
        db.upsert_prices(arrow_bars(["AAA"], [i], float(i + 1)))
    assert store.faults[fault] == 3
    fresh = ParquetDB(store=store)
    history = fresh.history()
    upserts = [h for h in history if h["operation"] == "upsert"]
    assert len(upserts) == 4  # none lost, none published twice
    ids = [fresh._table("prices").log.read_entry(h["version"])["commit_id"] for h in upserts]
    assert len(set(ids)) == 4
    got = fresh.read_table()
    assert list(got["close"]) == [1.0, 2.0, 3.0, 4.0]
    report = fresh.verify()
    assert report.ok and not report.orphans  # nothing was discarded or left behind


def test_the_loser_of_a_real_race_after_an_ambiguous_answer_commits_at_the_next_version(url):
    """Writer A's put times out before landing; B publishes that version meanwhile;
    A must read B's entry back, see another commit id, and publish as the next version."""
    base = ObjectStore(url)
    ParquetDB(store=base).upsert_prices(arrow_bars(["AAA"], [0], 1.0))

    class Racing(ScriptedBucket):
        def _put(self, key, data, mode):
            if mode == "create" and "/_log/" in key and self.script:
                self.script.pop(0)
                ParquetDB(store=base, auto_compact=False).upsert_prices(
                    arrow_bars(["BBB"], [0], 2.0)
                )
                raise GenericError("Generic S3 error: operation timed out")
            return super()._put(key, data, mode)

    racing = Racing(url, ["timeout-before"])
    racing.inner = base.inner  # the same bucket
    ParquetDB(store=racing, auto_compact=False).upsert_prices(arrow_bars(["CCC"], [0], 3.0))
    ops = [h["operation"] for h in ParquetDB(store=base).history()]
    assert ops == ["create", "upsert", "upsert", "upsert"]
    assert sorted(ParquetDB(store=base).read_table()["ticker"]) == ["AAA", "BBB", "CCC"]


def test_an_unresolvable_failure_keeps_the_files_and_says_so(url):
    """When even the read-back fails, the outcome is unknown: the error says so and the
    data files stay (an orphan at worst, which vacuum removes; never a dangling entry)."""

    class Down(ScriptedBucket):
        def _get(self, key, options=None):
            if self.faults and "/_log/" in key:
                raise GenericError("Generic S3 error: connection refused")
            return super()._get(key, options)

    store = Down(url, [None, "timeout-after"], retry_timeout=1.0)  # gives up after 1 s
    db = ParquetDB(store=store, auto_compact=False)
    with pytest.raises(ObjectStoreError, match="connection refused") as info:
        db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    assert getattr(info.value, "tickvault_committed", None) == -1
    store.faults.clear()
    fresh = ParquetDB(store=store)
    assert len(fresh.read_table()) == 1 and fresh.verify().ok  # it had landed: intact


def test_secrets_never_appear_in_repr_errors_or_pickles_of_the_handle_repr(url):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    opts = {"secret_access_key": secret, "access_key_id": "AKIDEXAMPLE", "region": "x"}
    with pytest.raises(ConfigError) as info:
        ParquetDB("s3://user:Pa55w0rdXYZ@bucket/db", storage_options={**opts, "nonsense": 1})
    assert secret not in str(info.value) and "Pa55w0rdXYZ" not in str(info.value)
    assert "s3://bucket/db" in str(info.value)
    store = ObjectStore("s3://bucket/db", opts)
    assert secret not in repr(store) and secret not in store.location
    err = store._fail("PUT", "k", GenericError(f"signature mismatch for key {secret}"))
    assert secret not in str(err) and "***" in str(err)
    clone = pickle.loads(pickle.dumps(store))  # Dask ships it with its options
    assert clone.storage_options == opts and clone.location == "s3://bucket/db"


def test_urls_are_shown_without_credentials():
    from tickvault.storage.core.store import display_url

    assert display_url("s3://AKID:SECRET@bucket/db?token=x#y") == "s3://bucket/db"
    assert display_url("gs://bucket/a/b") == "gs://bucket/a/b"
    assert display_url("az://account/container/db") == "az://account/container/db"
    # abfss' user part is the container, not a credential
    assert display_url("abfss://prices@acct.dfs.core.windows.net/db") == (
        "abfss://prices@acct.dfs.core.windows.net/db"
    )
    assert display_url("abfss://c:SECRET@acct.dfs.core.windows.net/db") == (
        "abfss://acct.dfs.core.windows.net/db"
    )


def test_a_url_database_pickles_and_shows_no_userinfo():
    db = ParquetDB("memory://pickled")
    assert db.path == "memory://pickled" and repr(db) == "ParquetDB('memory://pickled')"
    clone = pickle.loads(pickle.dumps(db))
    assert isinstance(clone.store, ObjectStore) and clone.path == db.path


@pytest.mark.slow
def test_a_slow_listing_never_slows_commits_reads_or_opening(url):
    """Listing a prefix is slow and paged on a real bucket, and a 10,000-version log would
    take many pages: opening, committing, reading, watermarks and history find the log by
    its checkpoint hint, so they never list the log. A new handle asks only for the names
    after its checkpoint (S3's start-after: one page, at most a checkpoint interval of
    entries) to fetch those entries at once. Only verify and vacuum (which look for
    orphans) list, and they still answer correctly."""

    class SlowList(ObjectStore):
        listed: list[str] = []  # noqa: RUF012
        tails: list[int] = []  # noqa: RUF012  (names each start-after listing returned)

        def _list(self, prefix):
            self.listed.append(prefix)
            import time

            time.sleep(0.3)  # one slow page
            return super()._list(prefix)

        def _list_after(self, prefix, offset):
            out = super()._list_after(prefix, offset)
            self.tails.append(len(out))
            return out

    store = SlowList(url)
    db = ParquetDB(store=store, checkpoint_interval=3, auto_vacuum=False)
    db.upsert_prices(arrow_bars(["AAA", "BBB"], [0, 0], 1.0))
    # creating the database: one look at its root (nothing else may be there, decision
    # 026); a new table has no checkpoint hint yet: one look at its log
    assert store.listed in ([None, "prices/_log"], ["prices/_log"], [None])
    store.listed.clear()
    for i in range(1, 8):
        db.upsert_prices(arrow_bars(["AAA", "BBB"], [i, i], float(i + 1)))
    db.compact()
    fresh = ParquetDB(store=store, checkpoint_interval=3)
    assert fresh.version >= 8 and len(fresh.read_table(tickers="AAA")) == 8
    assert set(fresh.watermarks()) == {"AAA", "BBB"} and len(fresh.history()) >= 9
    assert fresh.read_table(version=3)["close"].max() == 3.0  # from checkpoint 3
    assert fresh.read_table(version=5)["close"].max() == 5.0  # checkpoint 3 + 2 entries
    assert fresh.read_table(version=2)["close"].max() == 2.0  # replayed from version 0
    fresh.upsert_prices(arrow_bars(["CCC"], [9], 5.0))
    assert store.listed == []  # no listing of the log on any of the paths above
    # new handles (this one, the background compactor's) list only the names after
    # checkpoint 9: one request each, a few names
    assert store.tails and all(n <= 3 for n in store.tails)
    assert fresh.verify().ok and store.listed  # verify lists (orphan check) and is right
    store.listed.clear()
    assert fresh.vacuum(dry_run=True, retention=0).files and store.listed


def test_paths_that_look_like_urls_but_are_not_ones_we_open_are_refused(tmp_path, monkeypatch):
    """``s3:/bucket`` (one slash) and unknown schemes would silently become local folders
    named ``s3:`` or ``ftp:``; they are ConfigErrors naming the supported schemes."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"did you mean 's3://bucket/x'"):
        ParquetDB("s3:/bucket/x")
    with pytest.raises(ConfigError, match=r"unknown URL scheme 'ftp://'.*gs://"):
        ParquetDB("ftp://x/y")
    assert list(tmp_path.iterdir()) == []
    ParquetDB("./plain:name")  # a colon later in a relative path is a folder name
    assert (tmp_path / "plain:name").is_dir()


def test_a_version_that_does_not_exist_is_version_not_found(url):
    from tickvault.errors import VersionNotFound

    db = ParquetDB(url)
    db.upsert_prices(arrow_bars(["AAA"], [0], 1.0))
    with pytest.raises(VersionNotFound, match="version 99 does not exist") as info:
        db.read_table(version=99)
    assert info.value.newest == 1


def test_the_retry_budget_comes_from_the_options_or_the_environment(url, monkeypatch):
    monkeypatch.setenv("TICKVAULT_RETRY_TIMEOUT", "5")
    assert ObjectStore(url).retry_timeout == 5.0
    assert ObjectStore(url, {"retry_timeout": 0}).retry_timeout == 0.0
    import datetime as dt

    assert ObjectStore(url, {"retry_timeout": dt.timedelta(minutes=2)}).retry_timeout == 120
    for bad in (-1, "soon", True):
        with pytest.raises(ConfigError, match="retry_timeout"):
            ObjectStore(url, {"retry_timeout": bad})
