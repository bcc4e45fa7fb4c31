"""Fault section `link_noise`: the 4-stage extraction cascade for one simulated hour with bit
errors on the bus (BER 1e-4, 1e-3, 1e-2), against the same run on a clean bus.

Lock-step runs are deterministic and the host's writes land between the same ticks whatever
the retries, so the clean run is the truth the noisy one is judged by:
- corrupt_accepted: logged telemetry records whose values differ from the clean run's;
- writes_doubled / writes_lost: the boards' config versions and modes at the end, against the
  clean run's (a write applied twice moves the version on twice; a lost one not at all);
- samples_missing_before_backfill: samples the regular polls did not get when due (rounds
  without an answer × samples per round), which the logger then fetched from the backlog;
- samples_missing_after_backfill: clean-run records absent from the noisy run's log that the
  boards still held when the logger came for them (backfill must get every one of those);
  records the logger found gone from a board's backlog (the outage outlasted the backlog; it
  logs them as a gap) are samples_beyond_backlog;
- records after the last one logged: those the board still held when the run ended are
  samples_pending_at_end (their backfill had not come yet, the next round gets them); those it
  no longer held are lost as surely as a gap, only not found yet;
- samples_lost: every clean-run record the log lacks and no board holds any more, the gaps and
  the overwritten tail together. At 1e-4 and 1e-3 it must be 0.
At BER 1e-2 a 40-byte frame arrives intact about 4 % of the time: the link is mostly down, the
logger gets a record now and then, and the boards' 120-record rings overwrite the rest.

The short form (make test) runs 5 minutes at 1e-3 and 1e-2: each board counts about 130 broken
frames at 1e-3, where an accepted corruption or a run that is not the clean one's shows first (a
board whose first scan missed its preloaded SENSE, a boot-time race, once made 17 of its early
records differ from the clean run's).
"""
from sxproto import messages

from .. import boards
from ..bench import Figure
from ..sim import plants
from ..sim.session import Session

BACKLOG = boards.load("unix-sim").get("backlog_records", 120)

RATES = (1e-4, 1e-3, 1e-2)
EPOCH0 = 1760000000  # the same Unix time for every run: the records carry it


_TRIES = 50  # a short read on a 1e-2 line is answered about one time in ten


def _oldest_held(bus, addr):
    """The oldest record the board still holds (a BACKLOG read for no records), or None."""
    for _ in range(_TRIES):
        try:
            return bus.request(addr, messages.BACKLOG_READ, {"since": 0xFFFFFFFF, "count": 1},
                               expect=messages.BACKLOG).values["oldest"]
        except Exception:  # noqa: BLE001  a noisy line: try again
            pass
    return None


def _run(plant, duration_s, ber, seed):
    ends = {}
    held = {}

    def at_poll(session, t_s):
        if t_s >= duration_s - session.poll_s:  # the last round: what the boards say now
            for addr in session.telemetry:
                try:
                    ends[addr] = session.bus.hello(addr)
                except Exception:  # noqa: BLE001  a noisy round may fail; the one before stands
                    pass
                oldest = _oldest_held(session.bus, addr)
                if oldest is not None:
                    held[addr] = oldest
    # On a pty a board answers within milliseconds: a short wait per try keeps lost frames cheap.
    session = Session(plant, duration_s, ber=ber, seed=seed, epoch0=EPOCH0, on_poll=at_poll,
                      bus_timeout_s=0.01)
    result = session.run()
    gone = {}  # stage -> records the logger found gone from the board's backlog
    for stage, _epoch, kind, first, last, _time in session.sink.gaps:
        if kind == "telemetry":
            gone.setdefault(stage, set()).update(range(first, last + 1))
    return result, ends, gone, held


def _records(result):
    return {addr: {r["record"]: tuple(sorted((k, v) for k, v in r.items() if k != "time_s"))
                   for r in rows} for addr, rows in result.telemetry.items()}


def run(short):
    plant = plants.load("sx")
    duration = 300.0 if short else 3600.0
    rates = (1e-3, 1e-2) if short else RATES
    clean, clean_end, _, _ = _run(plant, duration, 0.0, 0)
    truth = _records(clean)
    figures = []
    for ber in rates:
        noisy, noisy_end, gone, held = _run(plant, duration, ber, 17)
        got = _records(noisy)
        corrupt = missing = beyond = pending = overwritten = unknown = 0
        for addr, rows in truth.items():
            mine = got.get(addr, {})
            last_logged = max(mine) if mine else 0
            oldest = held.get(addr)
            for record, values in rows.items():
                if record in mine:
                    corrupt += mine[record] != values
                elif record > last_logged:
                    # nothing logged after it: still on the board, or overwritten before the end
                    if oldest is None:
                        unknown += 1
                    elif record >= oldest:
                        pending += 1
                    else:
                        overwritten += 1
                elif record in gone.get(addr, ()):
                    beyond += 1
                else:
                    missing += 1
        doubled = lost = 0
        for addr, info in clean_end.items():
            other = noisy_end.get(addr)
            if other is None:
                continue
            doubled += max(0, other["config_version"] - info["config_version"])
            lost += max(0, info["config_version"] - other["config_version"]) + (other["mode"] != info["mode"])
        per_round = noisy.plant.poll_s if hasattr(noisy.plant, "poll_s") else 5.0
        key = "faults.ber_%s." % ("%.0e" % ber).replace("e-0", "e-")
        figures += [
            Figure(key + "corrupt_accepted", corrupt, "", ("==", 0),
                   "%d stages, %d s lock-step; records differing from the clean run" % (plant.boards, duration)),
            Figure(key + "writes_doubled", doubled, "", ("==", 0)),
            Figure(key + "writes_lost", lost, "", ("==", 0)),
            Figure(key + "samples_missing_before_backfill", int(noisy.polls_failed * per_round), "",
                   note="stage-rounds without an answer × samples per round; host link %s" % (
                       ", ".join("%s %d" % kv for kv in noisy.link.items() if kv[1]))),
            Figure(key + "samples_missing_after_backfill", missing, "", ("==", 0),
                   "records the boards still held when the logger came, yet not logged"),
            Figure(key + "samples_beyond_backlog", beyond, "",
                   note="gone from the %d-record backlog before the logger got through" % BACKLOG),
            Figure(key + "samples_pending_at_end", pending, "", note="after the last record logged: still on the boards"),
            Figure(key + "samples_lost", beyond + overwritten + unknown, "", ("==", 0) if ber < 1e-2 else None,
                   "of %d: gone from a board before logged (%d found as gaps, %d overwritten by the end%s)" % (
                       sum(len(rows) for rows in truth.values()), beyond, overwritten,
                       ", %d on boards that did not say what they held" % unknown if unknown else "")),
        ]
    return figures
