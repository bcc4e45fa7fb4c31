"""Test support ON MicroPython: a stage controller on a fake HAL whose signals a test sets."""
from array import array

import config_table as T
import proto
from config import Config
from controller import StageController
from ring import RecordRing
from stage import Stage

NERNST_25 = 59160  # µV per pH at 25 °C


class FakeHal:
    has_sensors = True

    def __init__(self):
        self.ph_uv = 0
        self.orp_uv = 0
        self.rtd_mohm = 0
        self.pulses = 8  # per scan on each meter: ~1 L/min at 450 pulses/L
        self.org_pulses = None  # the organic meter's, when it differs from the feed meter's
        self.sampled_aq = 0
        self.sampled_org = 0
        self.enabled = None
        self.base_doses = array("i", [0] * 8)
        self.writes = 0

    def set_ph(self, mph):
        self.ph_uv = (7000 - mph) * NERNST_25 // 1000

    def sample(self):
        self.sampled_aq = self.pulses
        self.sampled_org = self.pulses if self.org_pulses is None else self.org_pulses

    def set_full_scale(self, base_full, reagent_full):
        self.full_scale = (base_full, reagent_full)

    def write_outputs(self, stage, enabled):
        self.enabled = enabled
        self.writes += 1


_slot = [0]


def make(items=(), mode=None):
    """(controller, hal, stage, config) with config items applied and the stage in `mode`."""
    _slot[0] += 1
    config = Config(slots=("/t%d.a" % _slot[0], "/t%d.b" % _slot[0]))
    if items:
        config.apply(list(items))
    hal = FakeHal()
    stage = Stage()
    ctrl = StageController(hal, config, stage, RecordRing(16, proto.EVENTS_EVENTS_SIZE), lambda: 0)
    if mode is not None:
        ctrl.set_mode(mode)
    return ctrl, hal, stage, config


def run(ctrl, now, scans, period=1000):
    """`scans` measurement scans from `now`, a control scan every second one; returns the time."""
    every = ctrl.config.get(T.CONTROL_SCANS)
    for n in range(1, scans + 1):
        now += period
        ctrl.measure(now, period)
        if n % every == 0:
            ctrl.link_seen(now)
            ctrl.control(now, period * every)
    return now
