"""The real-board HAL against a fake `machine`, with the exact pins of every board definition."""
import sys

import stage as stage_module

import fwlib_machine as fm
from fwlib_machine import _hal  # the fake machine goes into sys.modules first

BOARD_MODULES = ("board_rp2_pico", "board_esp32_devkitc", "board_pyboard_v11")


def test_every_board_wires_its_own_pins():
    for module in BOARD_MODULES:
        hal, board = _hal(module)
        bus = board["bus"]
        uart = fm.LOG.uarts[-1]
        assert uart.ident == bus["uart"] and uart.baudrate == bus["baud"], module
        if "tx" in bus:
            assert uart.tx.ident == bus["tx"] and uart.rx.ident == bus["rx"], module
        for name in ("ph", "orp", "temperature"):
            assert board["adc"][name] in fm.LOG.adcs, (module, name)
        for name, pin in board["pwm_out"].items():
            assert fm.LOG.pwms[pin].duty == 0, (module, name)
        for name in ("flow_aq", "flow_org"):
            assert fm.LOG.pins[board["pulse_in"][name]].handler is not None, (module, name)
        assert fm.LOG.pins[board["digital_out"]["outputs_enable"]].level == 0, module
        assert fm.LOG.pins[bus["de"]].level == 0, module
        assert fm.LOG.wdt is None, module  # started by the loop, never by a maintenance or fail-safe boot
        hal.start_watchdog()
        assert fm.LOG.wdt.timeout == board["wdt_ms"], module


def test_outputs_follow_the_stage_and_enable_gates_them():
    hal, board = _hal("board_rp2_pico")
    hal.set_full_scale(50000, 10000)
    st = stage_module.Stage()
    st.base_dose = 25000  # half of full scale
    st.aq_pump = 200
    st.valves = 1
    hal.write_outputs(st, True)
    pwm = board["pwm_out"]
    assert abs(fm.LOG.pwms[pwm["base_pump"]].duty - 32767) <= 1
    assert fm.LOG.pwms[pwm["aq_pump"]].duty == 65535
    assert fm.LOG.pins[board["digital_out"]["outputs_enable"]].level == 1
    hal.write_outputs(st, False)
    assert fm.LOG.pwms[pwm["base_pump"]].duty == 0 and fm.LOG.pwms[pwm["aq_pump"]].duty == 0
    assert fm.LOG.pins[board["digital_out"]["outputs_enable"]].level == 0


def test_inputs_scale_and_pulses_are_counted_by_interrupt():
    hal, board = _hal("board_esp32_devkitc")
    adc = board["adc"]
    fm.LOG.adcs[adc["ph"]].counts = 32768 + 3277  # 3.3 V ref: +165 mV above mid-rail
    fm.LOG.adcs[adc["temperature"]].counts = 32768  # Pt1000 against 1000 ohm: mid-rail = 1000 ohm
    meter = fm.LOG.pins[board["pulse_in"]["flow_aq"]]
    for _ in range(7):
        meter.handler(meter)
    hal.sample()
    assert abs(hal.ph_uv - 165000) < 100
    assert abs(hal.rtd_mohm - 1000000) < 100
    assert hal.sampled_aq == 7 and hal.sampled_org == 0
    assert fm.LOG.irq_state == 0  # interrupts enabled again
    hal.sample()
    assert hal.sampled_aq == 0


def test_bus_drives_the_rs485_direction_pin_only_while_sending():
    hal, board = _hal("board_pyboard_v11")
    de = fm.LOG.pins[board["bus"]["de"]]
    seen = []
    uart = fm.LOG.uarts[-1]
    original = uart.write

    def write(buf, n=None):
        seen.append(de.level)
        original(buf, n)
    uart.write = write
    hal.bus.write(bytearray(b"\x01\x02\x03\x00"), 3)
    assert seen == [1] and de.level == 0 and uart.sent == b"\x01\x02\x03"


def test_watchdog_is_fed_by_the_loop():
    hal, board = _hal("board_rp2_pico")
    hal.feed_watchdog()  # not started: nothing to feed
    hal.start_watchdog()
    hal.feed_watchdog()
    hal.feed_watchdog()
    assert fm.LOG.wdt.fed == 2
    assert not hal.watchdog_reset()
    sys.modules["machine"].cause = 3
    assert hal.watchdog_reset()
    sys.modules["machine"].cause = 1


def test_boot_drives_every_output_pin_low_first():
    import hal.off
    for module in BOARD_MODULES:
        fm.LOG.__init__()
        board = __import__(module).BOARD
        hal.off.BOARD = board
        order = []
        real_init = fm.Pin.__init__

        def init(self, ident, mode=-1, value=None):
            order.append(ident)
            real_init(self, ident, mode, value)
        fm.Pin.__init__ = init
        try:
            hal.off.outputs_off()
        finally:
            fm.Pin.__init__ = real_init
        outs = list(board["pwm_out"].values()) + list(board["digital_out"].values())
        assert sorted(map(str, order)) == sorted(map(str, outs)), module
        assert order[0] == board["digital_out"]["outputs_enable"], module  # the gate before the pumps
        for pin in outs:
            assert fm.LOG.pins[pin].mode == fm.Pin.OUT and fm.LOG.pins[pin].level == 0, (module, pin)
