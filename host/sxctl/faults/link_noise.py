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
  logs them as a gap) are samples_beyond_backlog, and records after the last one logged (still
  on the boards when the run ended, their backfill pending) are samples_pending_at_end.
At BER 1e-2 a 40-byte frame arrives intact about 2 % of the time: the link is mostly down.
"""
from .. import boards
from ..bench import Figure
from ..sim import plants
from ..sim.session import Session

BACKLOG = boards.load("unix-sim").get("backlog_records", 120)

RATES = (1e-4, 1e-3, 1e-2)
EPOCH0 = 1760000000  # the same Unix time for every run: the records carry it


def _run(plant, duration_s, ber, seed):
    ends = {}

    def at_poll(session, t_s):
        if t_s >= duration_s - session.poll_s:  # the last round: what the boards say now
            for addr in session.telemetry:
                try:
                    ends[addr] = session.bus.hello(addr)
                except Exception:  # noqa: BLE001  a noisy round may fail; the one before stands
                    pass
    # On a pty a board answers within milliseconds: a short wait per try keeps lost frames cheap.
    session = Session(plant, duration_s, ber=ber, seed=seed, epoch0=EPOCH0, on_poll=at_poll,
                      bus_timeout_s=0.01)
    result = session.run()
    gone = {}  # stage -> records the logger found gone from the board's backlog
    for stage, _epoch, kind, first, last, _time in session.sink.gaps:
        if kind == "telemetry":
            gone.setdefault(stage, set()).update(range(first, last + 1))
    return result, ends, gone


def _records(result):
    return {addr: {r["record"]: tuple(sorted((k, v) for k, v in r.items() if k != "time_s"))
                   for r in rows} for addr, rows in result.telemetry.items()}


def run(short):
    plant = plants.load("sx")
    duration = 300.0 if short else 3600.0
    rates = (1e-2,) if short else RATES
    clean, clean_end, _ = _run(plant, duration, 0.0, 0)
    truth = _records(clean)
    figures = []
    for ber in rates:
        noisy, noisy_end, gone = _run(plant, duration, ber, 17)
        got = _records(noisy)
        corrupt = missing = beyond = pending = 0
        for addr, rows in truth.items():
            mine = got.get(addr, {})
            last_logged = max(mine) if mine else 0
            for record, values in rows.items():
                if record in mine:
                    corrupt += mine[record] != values
                elif record > last_logged:
                    pending += 1  # nothing logged after it: the backfill had not come yet
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
        ]
    return figures
