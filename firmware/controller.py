"""Stage controller: measurement and control scans of one stage, wired from the sensor and
control modules, configured from the config items. Scans allocate nothing."""
import struct
from micropython import const

import config_table as T
import configure
import proto
from control import alarms as A
from control.piloop import PiLoop
from fixedpoint import muldiv
from sensors.checks import CHK_STUCK, SignalCheck
from sensors.flow import FLOW_OK, PulseFlow
from sensors.orp import ORP_OK
from sensors.ph import Probe
from sensors.temperature import TEMP_OK


class StageController:
    def __init__(self, hal, config, stage, event_ring, time_s):
        self.hal = hal
        self.time_s = time_s  # board time for events
        self.config = config
        self.stage = stage
        self.events = event_ring
        self.probe = Probe()
        self.flow_aq = PulseFlow()
        self.flow_org = PulseFlow()
        self.aq_loop = PiLoop(0, 1, 0, 1)  # the loops' gains and limits are set by configure()
        self.org_loop = PiLoop(0, 1, 0, 1)
        self.orp_loop = PiLoop(0, 1, 0, 1)
        self.check = SignalCheck()
        self.alarms = A.Alarms(self._event)
        self.orp = None  # orp, envelope and pid are made by configure()
        self.temperature = None  # the probe, made by configure() only when one is used (temperature_source)
        self.t_mc = 25000  # m°C: the probe's last reading, else the configured fixed temperature
        self.envelope = None
        self.pid = None
        self.curve_points = None  # the titration points self.pid was built with (configure.py)
        self._primed = False
        self.ph_valid = False
        self.ph_stuck = 0
        self.orp_ok = False
        self.flow_org_ok = False
        self.temp_fault = False
        self.ph_ms = 0
        self.flow_ok = False
        self.safe = False  # in the link-loss safe state
        self.faulted = False  # a scan raised: off, with controller_fault, until a mode is commanded
        self.configure()

    def configure(self):
        """Apply the config items (after boot and after every accepted config write). Allocates.
        The work is configure.py's."""
        configure.apply(self)

    # --- commands ---------------------------------------------------------------------------
    def set_mode(self, mode):
        stage = self.stage
        stage.mode = mode
        self.safe = False
        self.faulted = False
        self.pid.set_mode(mode)
        if mode == proto.MODE_OFF:
            self.envelope.enabled = False
            self.aq_loop.reset()
            self.org_loop.reset()
            self.orp_loop.reset()
        else:
            self.envelope.enabled = True
        self.alarms.dev_enabled = mode == proto.MODE_AUTO

    def link_seen(self, now_ms):
        self.alarms.link_seen(now_ms)

    def ack(self, mask, now_ms):
        if mask & A.AL_DOSE_TRIP:
            # acknowledging the trip re-arms dosing, but only once the pH is back below the trip
            self.envelope.reset_trip(self.stage.ph if self.ph_valid else 0x7FFF)
        active = self.alarms.ack(mask, now_ms)
        self.stage.alarms_unacked = self.alarms.unacked
        return active

    # --- scans ------------------------------------------------------------------------------
    def measure(self, now_ms, dt_ms):
        """One measurement scan: every input read, checked and converted into the stage."""
        hal = self.hal
        stage = self.stage
        hal.sample()
        sensors = hal.has_sensors
        temp = self.temperature
        if temp is not None:
            self.temp_fault = temp.read(hal.rtd_mohm) != TEMP_OK
            self.t_mc = temp.mc
        t_mc = self.t_mc
        stage.temperature = t_mc // 10
        mph = self.probe.ph(hal.ph_uv, t_mc)
        flags = self.check.update(mph, sensors and not self.probe.fault, now_ms, self.pid.out)
        self.ph_valid = flags == 0
        self.ph_stuck = flags & CHK_STUCK
        if self.ph_valid:
            self.ph_ms = now_ms
            stage.ph = self.check.value
        if self._primed:
            self.flow_ok = sensors and self.flow_aq.add(hal.sampled_aq, dt_ms) == FLOW_OK
            self.flow_org_ok = sensors and self.flow_org.add(hal.sampled_org, dt_ms) == FLOW_OK
        else:
            self._primed = True  # the first sample's pulses span an unknown time since boot: skip it
        stage.flow_aq = self.flow_aq.ml_min
        stage.flow_org = self.flow_org.ml_min
        self.orp_ok = sensors and self.orp.read(hal.orp_uv) == ORP_OK
        stage.orp_mv = self.orp.mv

    def link_timed_out(self, now_ms, scan_ms):
        """True when the link timeout will have passed before the next scan: the caller runs a
        control scan now, so the safe state is reached within the timeout, not up to a scan late."""
        return not self.safe and self.alarms.link_lost(now_ms + scan_ms)

    def control(self, now_ms, dt_ms):
        """One control scan: pH loop through the dosing envelope, flow and ORP loops, alarms."""
        stage = self.stage
        cfg = self.config.values  # indexed directly: a bound method would allocate
        pid = self.pid
        mode = stage.mode
        if not self.safe and self.alarms.link_lost(now_ms):
            self._enter_safe_state(now_ms)
            mode = stage.mode
        request = pid.update(stage.ph, dt_ms, stage.flow_aq) if self.ph_valid or mode != proto.MODE_AUTO else 0
        env = self.envelope
        want_ul = muldiv(request, dt_ms, 6000)  # 0.01 mL/min over the scan -> µL
        granted = env.grant(want_ul, now_ms, stage.ph, self.ph_valid, self.ph_ms, stage.flow_aq, self.flow_ok)
        # back to a rate; when nothing was cut, the request itself (no rounding round trip)
        stage.base_dose = request if granted == want_ul else muldiv(granted, 6000, dt_ms)
        if mode == proto.MODE_OFF:
            stage.aq_pump = stage.org_pump = stage.reagent_dose = 0
        elif mode != proto.MODE_HOLD:
            # A flow loop whose meter is faulted holds its pump: its reading is no flow, on
            # which the loop would wind the pump up to full.
            if self.flow_ok:
                stage.aq_pump = self.aq_loop.update(cfg[T.FLOW_AQ_SETPOINT] - stage.flow_aq, dt_ms)
            ratio = cfg[T.OA_RATIO]
            if self.flow_org_ok and (self.flow_ok or not ratio):
                org_sp = muldiv(stage.flow_aq, ratio, 1000) if ratio else cfg[T.FLOW_ORG_SETPOINT]
                stage.org_pump = self.org_loop.update(org_sp - stage.flow_org, dt_ms)
            if self.orp_ok and cfg[T.ORP_KP] and not self.safe:
                stage.reagent_dose = self.orp_loop.update(cfg[T.ORP_SETPOINT] - stage.orp_mv, dt_ms)
            else:
                stage.reagent_dose = 0
        faults = 0
        if not self.ph_valid:
            faults |= A.AL_PH_FAULT
        if self.ph_stuck:
            faults |= A.AL_PH_STUCK
        if not self.orp_ok and cfg[T.ORP_KP]:
            faults |= A.AL_ORP_FAULT
        if not self.flow_ok:
            faults |= A.AL_FLOW_FAULT
        elif stage.flow_aq < cfg[T.MIN_FLOW_FOR_DOSING] and mode != proto.MODE_OFF:
            faults |= A.AL_NO_FLOW
        if not self.flow_org_ok:
            faults |= A.AL_FLOW_ORG_FAULT
        if env.cut:
            faults |= A.AL_DOSE_CUT
        if env.tripped:
            faults |= A.AL_DOSE_TRIP
        if self.temp_fault:
            faults |= A.AL_TEMP_FAULT
        if self.faulted:
            faults |= A.AL_CONTROLLER_FAULT
        stage.alarms_active = self.alarms.update(now_ms, stage.ph, self.ph_valid, stage.ph_setpoint, faults)
        stage.alarms_unacked = self.alarms.unacked
        self.hal.write_outputs(stage, mode != proto.MODE_OFF)

    def _enter_safe_state(self, now_ms):
        # Link lost: the configured safe state, until the host commands a mode again.
        if self.config.get(T.SAFE_STATE) == 0:
            self.set_mode(proto.MODE_OFF)
        else:
            self.set_mode(proto.MODE_HOLD)
            self.envelope.enabled = False  # base off; flows keep their last output
        self.safe = True

    def fault(self, part, now_ms):
        """A scan raised: every output off at once and the stage off, with controller_fault
        (its event's value says which part of the scan, app.PART_*) until the host commands a
        mode again. Allocation is allowed here: it only runs on a fault."""
        self.hal.write_outputs(None, False)
        stage = self.stage
        stage.base_dose = stage.reagent_dose = stage.aq_pump = stage.org_pump = stage.valves = 0
        stage.mode = proto.MODE_OFF
        if not self.faulted:  # raised once; a fault that repeats each scan keeps it up
            self.latch(A.AL_CONTROLLER_FAULT, part, True)
        try:
            self.set_mode(proto.MODE_OFF)
        except Exception:
            pass  # the fault may be in the loops themselves: the outputs are off all the same
        self.faulted = True

    def latch(self, bit, value, active=False):
        """Raise one alarm now, outside the scans (a fault, a watchdog reset): shown and latched
        until acknowledged, and while `active` until its condition clears."""
        alarms = self.alarms
        alarms.unacked |= bit
        if active:
            alarms.active |= bit
        self.stage.alarms_active = alarms.active
        self.stage.alarms_unacked = alarms.unacked
        for n in range(16):
            if bit >> n & 1:
                self.event(proto.EV_RAISED, n, value)

    def event(self, code, alarm, value):
        """Queue one event (proto.EV_*) in the stage's event ring, numbered, for EVENTS_READ."""
        ring = self.events
        struct.pack_into(proto.EVENTS_EVENTS_FMT, ring.ring, ring.slot(), ring.latest + 1, self.time_s(),
                         code, alarm, value)
        ring.commit()

    def _event(self, kind, bits, now_ms):
        # An alarm change (control.alarms) goes into the event ring as one event per alarm bit.
        for bit in range(16):
            if bits >> bit & 1:
                self.event(kind, bit, self.stage.ph)
