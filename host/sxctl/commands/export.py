"""sxctl export: a log's telemetry as CSV in engineering units, ordered by time and stage."""
import argparse
import csv
import datetime
import os
import sys

HELP = "write the telemetry of an `sxctl log` file or of the plant historian as CSV in engineering units"
EXAMPLE = "sxctl export plant.sqlite --csv plant.csv --stage 2 --from 2024-06-10T08:00"
# The same from the historian's database, one gateway:
#   sxctl export postgresql://sxctl@dbhost/plant --gateway gw1 --csv gw1.csv

# CSV column -> telemetry field; units are the protocol's (test_export_plot checks they match).
COLUMNS = (("ph", "ph"), ("ph_setpoint", "ph_setpoint"), ("orp_mv", "orp_mv"),
           ("temperature_c", "temperature"), ("flow_aq_lpm", "flow_aq"), ("flow_org_lpm", "flow_org"),
           ("base_dose_ml_min", "base_dose"))
# Alarms in their two states (ISA-18.2): present now, and not yet acknowledged; the second is
# empty for rows logged before the boards reported it (log schema 1).
HEADER = ("time", "stage") + tuple(c for c, _ in COLUMNS) + ("mode", "alarms_active", "alarms_unacked")


def time_arg(text):
    """Unix seconds, or an ISO 8601 date and time: UTC, as the CSV and the plots show times,
    unless it names its zone (Z, +02:00)."""
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return int(when.timestamp())
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError("a time looks like 2024-06-10T08:00, 2024-06-10T08:00Z "
                                         "or Unix seconds, not %r" % text) from None


def _stages(text):
    from .common import stage_list
    return stage_list(text)


def _gateways(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name one gateway or more, e.g. gw1,gw2")
    return names


def selection_arguments(p):
    p.add_argument("db", metavar="FILE|URL", help="SQLite file written by `sxctl log` or `sxctl serve`, or the "
                                                  "historian's database: postgresql://[user@]host[:port]/database")
    p.add_argument("--gateway", type=_gateways, default=None, metavar="NAMES",
                   help="historian database only: these gateways, e.g. gw1,gw2 (default: all). Rows come gateway by "
                        "gateway; the CSV has a gateway's own columns (no gateway name: export one gateway to tell them "
                        "apart), a plot names each panel gateway/stage")
    p.add_argument("--stage", type=_stages, default=None, metavar="STAGES",
                   help="only these stages, e.g. 2 or 1-4,7 (default: all)")
    p.add_argument("--from", dest="start", type=time_arg, default=None, metavar="T",
                   help="from this time on (ISO 8601 in UTC like the output, unless it ends in +hh:mm; or Unix s)")
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
        active, unacked = r[-2], r[-1]
        # A faulted input is no reading: an empty cell, the alarms column says which fault.
        values = ["" if st.faulted(f, active) else "%.*f" % (d, raw * s) if d else str(round(raw * s))
                  for f, raw, (s, d) in zip(fields, r[2:-3], convert)]
        yield [st.iso_time(r[0]), r[1]] + values + [st.mode_name(r[-3]), st.alarm_names(active),
                                                    "" if unacked is None else st.alarm_names(unacked)]


def open_log(args, label_stages=False):
    """The store the selection reads: an SQLite log, or the historian's PostgreSQL database (with
    `label_stages`, a stage of several gateways' is named gateway/stage)."""
    from ..errors import SxctlError
    from ..historian import pgstore
    from ..store import SQLiteStore

    if pgstore.is_url(args.db):
        return pgstore.PgReader(args.db, args.gateway, label_stages)
    if args.gateway:
        raise SxctlError("--gateway selects gateways in the historian's database (a postgresql:// URL); "
                         "%s is one gateway's own log" % args.db)
    return SQLiteStore(args.db, readonly=True)


def run(args):
    store = open_log(args)
    out = sys.stdout if args.csv == "-" else open(args.csv, "w", newline="")
    n = 0
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows(store, args.stage, args.start, args.end):
            writer.writerow(row)
            n += 1
        out.flush()
    except BrokenPipeError:
        # The reader stopped (`| head`): what it wanted it has; nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if out is not sys.stdout:
            out.close()
        store.close()
    print("%d rows written to %s" % (n, args.csv), file=sys.stderr)
    return 0
