"""sxctl export: a log's telemetry as CSV in engineering units, ordered by time and stage."""
import argparse
import csv
import datetime
import sys

HELP = "write the telemetry of an `sxctl log` file as CSV in engineering units"
EXAMPLE = "sxctl export plant.sqlite --csv plant.csv --stage 2 --from 2024-06-10T08:00"

# CSV column -> telemetry field; units are the protocol's (test_export_plot checks they match).
COLUMNS = (("ph", "ph"), ("ph_setpoint", "ph_setpoint"), ("orp_mv", "orp_mv"),
           ("temperature_c", "temperature"), ("flow_aq_lpm", "flow_aq"), ("flow_org_lpm", "flow_org"),
           ("base_dose_ml_min", "base_dose"))
# Alarms in their two states (ISA-18.2): present now, and not yet acknowledged; the second is
# empty for rows logged before the boards reported it (log schema 1).
HEADER = ("time", "stage") + tuple(c for c, _ in COLUMNS) + ("mode", "alarms_active", "alarms_unacked")


def time_arg(text):
    """Unix seconds, or an ISO 8601 date and time (local time unless it names a zone)."""
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        return int(datetime.datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise argparse.ArgumentTypeError("a time looks like 2024-06-10T08:00, 2024-06-10T08:00Z "
                                         "or Unix seconds, not %r" % text) from None


def selection_arguments(p):
    p.add_argument("db", metavar="FILE", help="SQLite file written by `sxctl log`")
    p.add_argument("--stage", type=int, nargs="+", default=None, help="only these stages (default: all)")
    p.add_argument("--from", dest="start", type=time_arg, default=None, metavar="T",
                   help="from this time on (ISO 8601, local unless it ends in Z or +hh:mm; or Unix s)")
    p.add_argument("--to", dest="end", type=time_arg, default=None, metavar="T", help="up to this time")


def add_arguments(p):
    selection_arguments(p)
    p.add_argument("--csv", required=True, metavar="OUT", help="CSV file to write ('-': standard output)")


def rows(store, stages=None, start=None, end=None):
    """CSV rows (tuples of text and numbers) of the selected telemetry, ordered by time, stage."""
    from .. import store as st

    fields = [f for _, f in COLUMNS]
    convert = [(st.scale(f), st.decimals(f)) for f in fields]
    columns = ("time", "stage") + tuple(fields) + ("mode", "alarms_active", "alarms_unacked")
    for r in store.telemetry(stages, start, end, columns=columns):
        values = ["%.*f" % (d, raw * s) if d else str(round(raw * s)) for raw, (s, d) in zip(r[2:-3], convert)]
        unacked = "" if r[-1] is None else st.alarm_names(r[-1])
        yield [st.iso_time(r[0]), r[1]] + values + [st.mode_name(r[-3]), st.alarm_names(r[-2]), unacked]


def run(args):
    from ..store import SQLiteStore

    store = SQLiteStore(args.db, readonly=True)
    out = sys.stdout if args.csv == "-" else open(args.csv, "w", newline="")
    n = 0
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows(store, args.stage, args.start, args.end):
            writer.writerow(row)
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
        store.close()
    print("%d rows written to %s" % (n, args.csv), file=sys.stderr)
    return 0
