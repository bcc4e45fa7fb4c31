"""Codec server for host tests, run ON MicroPython: the firmware's Link parses and builds frames.

One JSON request per stdin line, one JSON answer per stdout line:

    {"op": "parse", "addr": A, "hex": H}  H fed to a Link at address A through poll():
        {"frames": [{"type", "seq", "broadcast", "body_len", "flat"}], "crc_errors", "dropped"}
    {"op": "build", "addr": A, "seq": S, "type": T, "flags": F, "flat": [...]}  the handler of a
        request with sequence S packs the body (struct.pack_into) and calls link.reply(T, size, F):
        {"hex": wire bytes written}
"""
import binascii
import json
import sys

import fwlib_codec
import proto
from link import Link


def _poll_all(link, port, data):
    port.feed(data)
    while port.pending():
        link.poll()


def parse(req):
    frames = []

    def handler(link, msg_type, body_len, broadcast):
        name = fwlib_codec.name_of(msg_type)
        frames.append({"type": msg_type, "seq": link._seq, "broadcast": broadcast,
                       "body_len": body_len,
                       "flat": fwlib_codec.unpack(name, link.rx, proto.HEADER_SIZE, body_len)})

    port = fwlib_codec.RecordingPort()
    # A fresh Link each time: a repeated write must not be taken for the host's retry.
    link = Link(port, req["addr"], handler)
    _poll_all(link, port, binascii.unhexlify(req["hex"]))
    return {"frames": frames, "crc_errors": link.crc_errors, "dropped": link.dropped}


def build(req):
    def handler(link, msg_type, body_len, broadcast):
        name = fwlib_codec.name_of(req["type"])
        size = fwlib_codec.pack(name, link.tx, proto.HEADER_SIZE, req["flat"])
        link.reply(req["type"], size, req["flags"])

    port = fwlib_codec.RecordingPort()
    link = Link(port, req["addr"], handler)
    # The reply takes its sequence number from the request it answers, as on a board.
    _poll_all(link, port, fwlib_codec.frame(req["addr"], 0, req["seq"], proto.MSG_HELLO))
    return {"hex": "".join(binascii.hexlify(w).decode() for w in port.written)}


OPS = {"parse": parse, "build": build}


def serve():
    print(json.dumps({"ready": True, "fingerprint": proto.FINGERPRINT}))
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        try:
            req = json.loads(line)
            answer = OPS[req["op"]](req)
        except Exception as e:  # answer the host rather than die: it shows the error
            answer = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(answer))


serve()
