"""The local-transaction journal's file: records kept in order, a torn or damaged tail dropped
with words (the records before it kept), rewrites atomic."""

from __future__ import annotations

from pathlib import Path

from poai.txpool.journal import TxJournal


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    j = TxJournal(tmp_path / "txpool" / "transactions.journal")
    assert j.load() == ([], None)  # no file yet: nothing, no complaint
    raws = [bytes([i]) * (i + 1) for i in range(5)]
    for raw in raws:
        j.append(raw)
    assert j.appended == 5
    assert TxJournal(j.path).load() == (raws, None)  # readable by another process meanwhile
    j.close()


def test_a_torn_tail_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    j = TxJournal(tmp_path / "j")
    for raw in (b"first", b"second", b"third"):
        j.append(raw)
    j.close()
    whole = j.path.read_bytes()
    for cut in (1, 3, 8, 12):  # inside the header, then inside the body of the last record
        j.path.write_bytes(whole[:-cut])
        records, problem = j.load()
        assert records == [b"first", b"second"]
        assert problem is not None and "cut short" in problem


def test_a_damaged_record_stops_the_read_there(tmp_path: Path) -> None:
    j = TxJournal(tmp_path / "j")
    for raw in (b"first", b"second", b"third"):
        j.append(raw)
    j.close()
    data = bytearray(j.path.read_bytes())
    data[8 + 5 + 8] ^= 0xFF  # first byte of "second"
    j.path.write_bytes(bytes(data))
    records, problem = j.load()
    assert records == [b"first"]
    assert problem is not None and "damaged record at byte 13" in problem
    data = bytearray(j.path.read_bytes())
    data[13:17] = (1 << 30).to_bytes(4, "big")  # an absurd length
    j.path.write_bytes(bytes(data))
    assert j.load()[0] == [b"first"] and "cut short" in str(j.load()[1])


def test_rewrite_replaces_the_file_and_appends_go_on_after_it(tmp_path: Path) -> None:
    j = TxJournal(tmp_path / "j")
    for raw in (b"a", b"b", b"c"):
        j.append(raw)
    assert j.rewrite([b"b"]) == 1
    assert j.appended == 0 and not j.path.with_suffix(".tmp").exists()
    j.append(b"d")
    j.close()
    assert j.load() == ([b"b", b"d"], None)
