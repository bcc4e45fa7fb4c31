"""The bus service refuses a request that fails inside the firmware, and the stage runs on."""
import proto
import service


class FakeLink:
    verified = True  # an addressed frame that passed every check

    def __init__(self):
        self.errors = []
        self.replies = []
        self.tx = bytearray(64)
        self.rx = bytearray(64)

    def reply_error(self, request_type, code, detail=0):
        self.errors.append((request_type, code))

    def reply(self, msg_type, size, flags=0):
        self.replies.append(msg_type)


class FakeHal:
    def ticks_ms(self):
        return 0


class FakeStage:
    alarms_active = 0
    alarms_unacked = 0


class FakeController:
    def __init__(self, fault):
        self.fault = fault  # what ack raises; None: it acknowledges
        self.seen = 0
        self.acks = 0

    def link_seen(self, now_ms):
        self.seen += 1

    def ack(self, mask, now_ms):
        self.acks += 1
        if self.fault is not None:
            raise self.fault


class FakeApp:
    def __init__(self, fault):
        self.controller = FakeController(fault)
        self.hal = FakeHal()
        self.stage = FakeStage()


def _ack(fault, broadcast=False):
    app, link = FakeApp(fault), FakeLink()
    service.on_request(app, link, proto.MSG_ALARM_ACK, proto.ALARM_ACK_SIZE, broadcast)
    return app, link


def test_the_fakes_carry_a_request_through():
    app, link = _ack(None)
    assert app.controller.acks == 1 and link.replies == [proto.MSG_ALARM_STATE] and not link.errors


def test_a_fault_in_a_request_is_refused_and_the_loop_goes_on():
    app, link = _ack(ValueError("bug"))  # returns: nothing reaches the board's loop
    assert link.errors == [(proto.MSG_ALARM_ACK, proto.ERR_FIRMWARE_FAULT)] and not link.replies
    assert app.controller.seen == 1 and app.controller.acks == 1


def test_a_request_without_heap_is_refused_as_out_of_memory():
    app, link = _ack(MemoryError())
    assert link.errors == [(proto.MSG_ALARM_ACK, proto.ERR_OUT_OF_MEMORY)], link.errors


def test_ctrl_c_still_stops_the_board():
    try:
        _ack(KeyboardInterrupt())
    except KeyboardInterrupt:
        return
    assert False, "KeyboardInterrupt was swallowed"


def test_every_request_the_protocol_declares_has_its_handler():
    # One table, type -> handler; the body sizes are the protocol's (proto.REQUEST_SIZES).
    sizes = proto.REQUEST_SIZES
    declared = [t for t in range(len(sizes)) if sizes[t] != 255]
    assert len(declared) >= 17 and proto.MSG_CALIBRATE in declared
    assert sorted(service.HANDLERS) == declared


def test_a_type_without_handler_is_refused_as_unknown():
    app, link = FakeApp(None), FakeLink()
    service.on_request(app, link, len(proto.REQUEST_SIZES), 0, False)
    service.on_request(app, link, proto.MSG_INFO, 0, False)  # a reply type, never a request
    assert link.errors == [(len(proto.REQUEST_SIZES), proto.ERR_UNKNOWN_MESSAGE_TYPE),
                           (proto.MSG_INFO, proto.ERR_UNKNOWN_MESSAGE_TYPE)]
    service.on_request(app, link, proto.MSG_ALARM_ACK, proto.ALARM_ACK_SIZE + 1, False)
    assert link.errors[-1] == (proto.MSG_ALARM_ACK, proto.ERR_BAD_PAYLOAD_LENGTH) and not link.replies
