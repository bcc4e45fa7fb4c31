"""Tests for sensors.ph (Nernst slope, conversion), its calibration and
sensors.temperature, the input its temperature compensation uses."""

from sensors import ph, temperature
from fwlib_bounds import checked_muldiv as _checked

_SMALL = 1 << 30


def _probe_with(acid, base, offset_uv):
    p = ph.Probe()
    p.cal.acid_slope = acid
    p.cal.base_slope = base
    p.cal.offset_uv = offset_uv
    return p


def _electrode_uv(mph, t_mc, slope=10000, offset_uv=0):
    # what an electrode with this slope and offset reads in a solution of pH mph (wide ints)
    n = ph.nernst_uv(t_mc)
    return offset_uv - (mph - 7000) * n * slope // 10000000


def test_nernst_slope_at_25_0_40_c():
    assert ph.nernst_uv(25000) == 59160  # 59.16 mV/pH
    assert ph.nernst_uv(0) == 54199  # 54.20
    assert ph.nernst_uv(40000) == 62136  # 62.14


def test_nernst_slope_per_kelvin():
    # 0.1984 mV/K per pH: 19.84 mV over 100 K
    assert abs((ph.nernst_uv(75000) - ph.nernst_uv(-25000)) - 19840) <= 2
    assert abs((ph.nernst_uv(26000) - ph.nernst_uv(25000)) - 198) <= 1


def test_nernst_clamps_temperature():
    assert ph.nernst_uv(-200000) == ph.nernst_uv(ph.T_MIN)
    assert ph.nernst_uv(900000) == ph.nernst_uv(ph.T_MAX)


def test_ideal_electrode_at_25_c():
    p = ph.Probe()
    assert p.ph(0, 25000) == 7000
    assert p.ph(-59160, 25000) == 8000
    assert p.ph(177480, 25000) == 4000
    assert p.ph(-59160 * 3, 25000) == 10000
    assert p.slope_uv == 59160


def test_temperature_compensation():
    p = ph.Probe()
    assert p.ph(-62136 * 3, 40000) == 10000
    assert p.ph(54199 * 3, 0) == 4000
    # the same potential means a different pH at 40 C: 7 + 177.48 / 62.136 = 9.856
    assert p.ph(-177480, 40000) == 9856


def test_offset_and_sides():
    p = _probe_with(9800, 9600, 12000)
    assert p.ph(12000, 25000) == 7000
    # acid side uses 98 %: 3 pH below 7 is 3 * 59160 * 0.98 above the offset
    assert p.ph(12000 + 173930, 25000) == 4000
    # base side uses 96 %
    assert p.ph(12000 - 170381, 25000) == 10000


def test_rail_is_a_fault_and_holds():
    p = ph.Probe(rail_uv=500000)
    assert p.ph(-59160, 25000) == 8000 and not p.fault
    assert p.ph(500000, 25000) == 8000 and p.fault
    assert p.ph(-600000, 25000) == 8000 and p.fault
    assert p.ph(0, 25000) == 7000 and not p.fault


def test_cal_mid_at_20_c_takes_the_buffer_ph_sent():
    # an ideal electrode in the 7.00 buffer at 20 C sits at pH 7.02 (the host's table), i.e. -1.163 mV
    p = ph.Probe()
    e = _electrode_uv(7020, 20000)
    assert e == -1163
    assert p.calibrate(ph.BUF_7, e, 20000, 1000, 7020) == 0
    assert abs(p.cal.offset_uv) <= 1
    assert p.cal.points == ph.BUF_7


def test_cal_one_point_offset():
    p = ph.Probe()
    assert p.calibrate(ph.BUF_7, 20000, 25000) == 0
    assert p.cal.offset_uv == 20000
    assert p.cal.acid_slope == 10000 and p.cal.base_slope == 10000
    assert p.ph(20000, 25000) == 7000
    assert p.ph(20000 - 59160, 25000) == 8000


def test_cal_offset_warn_and_reject():
    p = ph.Probe()
    assert p.calibrate(ph.BUF_7, 30000, 25000) == 0  # exactly 30 mV: no warning
    assert p.calibrate(ph.BUF_7, -40000, 25000) == ph.CAL_WARN_OFFSET
    assert p.cal.offset_uv == -40000 and p.cal.flags == ph.CAL_WARN_OFFSET
    kept = p.cal.cal_id
    assert p.calibrate(ph.BUF_7, 70000, 25000) == ph.CAL_REJECT_OFFSET
    assert p.last_flags == ph.CAL_REJECT_OFFSET
    assert p.cal.offset_uv == -40000 and p.cal.cal_id == kept
    assert p.calibrate(ph.BUF_7, 60000, 25000) == ph.CAL_WARN_OFFSET  # 60 mV itself is accepted


def test_cal_side_point_needs_mid():
    p = ph.Probe()
    assert p.calibrate(ph.BUF_4, 177480, 25000) == ph.CAL_REJECT_NO_MID
    assert p.cal.points == 0 and p.cal.cal_id == 0


def test_cal_two_point_acid_side():
    p = ph.Probe()
    assert p.calibrate(ph.BUF_7, 0, 25000) == 0
    assert p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, 9800), 25000) == 0
    assert p.cal.points == ph.BUF_7 | ph.BUF_4
    assert abs(p.cal.acid_slope - 9800) <= 1
    assert p.cal.base_slope == p.cal.acid_slope  # one side point serves both sides
    assert p.ph(_electrode_uv(4000, 25000, 9800), 25000) == 4000
    assert abs(p.ph(_electrode_uv(9000, 25000, 9800), 25000) - 9000) <= 1


def test_cal_three_point_with_warn():
    p = ph.Probe()
    off = 5000
    p.calibrate(ph.BUF_7, _electrode_uv(7000, 25000, 10000, off), 25000)
    assert p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, 9900, off), 25000) == 0
    assert p.calibrate(ph.BUF_10, _electrode_uv(10010, 25000, 9300, off), 25000) == ph.CAL_WARN_SLOPE
    c = p.cal
    assert c.points == ph.BUF_7 | ph.BUF_4 | ph.BUF_10
    assert abs(c.acid_slope - 9900) <= 1 and abs(c.base_slope - 9300) <= 1
    assert abs(c.offset_uv - off) <= 1
    assert abs(p.ph(_electrode_uv(4000, 25000, 9900, off), 25000) - 4000) <= 1
    assert abs(p.ph(_electrode_uv(10010, 25000, 9300, off), 25000) - 10010) <= 1


def test_cal_high_point_at_20_c_reads_10_06():
    # the host sends each buffer's pH at its temperature (sxproto/buffers.py: 7.02 and 10.06 at 20 °C)
    p = ph.Probe()
    p.calibrate(ph.BUF_7, _electrode_uv(7020, 20000), 20000, 0, 7020)
    e10 = _electrode_uv(10060, 20000)
    assert p.calibrate(ph.BUF_10, e10, 20000, 0, 10060) == 0
    assert abs(p.cal.base_slope - 10000) <= 1
    assert abs(p.ph(e10, 20000) - 10060) <= 1


def test_cal_slope_reject_keeps_previous():
    p = ph.Probe()
    p.calibrate(ph.BUF_7, 0, 25000)
    p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, 9700), 25000)
    before = (p.cal.cal_id, p.cal.points, p.cal.acid_slope, p.cal.base_slope, p.cal.offset_uv)
    assert p.calibrate(ph.BUF_10, _electrode_uv(10010, 25000, 8000), 25000) == ph.CAL_REJECT_SLOPE
    assert p.calibrate(ph.BUF_10, _electrode_uv(10010, 25000, 10700), 25000) == ph.CAL_REJECT_SLOPE
    after = (p.cal.cal_id, p.cal.points, p.cal.acid_slope, p.cal.base_slope, p.cal.offset_uv)
    assert before == after


def test_cal_slope_band_edges():
    for slope, flags in ((10500, 0), (9500, 0), (9400, ph.CAL_WARN_SLOPE), (8500, ph.CAL_WARN_SLOPE),
                         (8400, ph.CAL_REJECT_SLOPE), (10600, ph.CAL_REJECT_SLOPE)):
        p = ph.Probe()
        p.calibrate(ph.BUF_7, 0, 25000)
        assert p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, slope), 25000) == flags, slope


def test_new_mid_clears_other_points():
    p = ph.Probe()
    p.calibrate(ph.BUF_7, 0, 25000)
    p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, 9700), 25000)
    p.calibrate(ph.BUF_10, _electrode_uv(10010, 25000, 9600), 25000)
    assert p.calibrate(ph.BUF_7, 3000, 25000) == 0
    assert p.cal.points == ph.BUF_7
    assert p.cal.acid_slope == 10000 and p.cal.base_slope == 10000 and p.cal.offset_uv == 3000


def test_cal_record_id_and_time():
    p = ph.Probe()
    p.calibrate(ph.BUF_7, 0, 25000, 1700000000)
    assert p.cal.cal_id == 1 and p.cal.time == 1700000000
    p.calibrate(ph.BUF_7, 99000, 25000, 1700000100)  # rejected: no new id
    p.calibrate(ph.BUF_4, 177480, 25000, 1700000200)
    assert p.cal.cal_id == 2 and p.cal.time == 1700000200


def test_rtd_table_points():
    # IEC 60751 Pt1000: 1000.000 ohm at 0 C, 1097.347 at 25 C, 1385.055 at 100 C
    assert temperature.rtd_mc(1000000) == 0
    assert abs(temperature.rtd_mc(1097347) - 25000) <= 5
    assert temperature.rtd_mc(1385055) == 100000
    assert temperature.rtd_mc(803063) == -50000
    assert temperature.rtd_mc(1573251) == 150000
    assert temperature.rtd_mc(500000) == -1000000


def test_temperature_pt1000_and_pt100():
    t = temperature.Temperature(1000)
    assert t.read(1193971) == temperature.TEMP_OK and t.mc == 50000 and not t.fallback
    t100 = temperature.Temperature(100)
    assert t100.read(119397) == temperature.TEMP_OK and abs(t100.mc - 50000) <= 3


def test_temperature_falls_back_to_fixed():
    t = temperature.Temperature(1000, fixed_mc=30000)
    assert t.fallback and t.mc == 30000  # nothing read yet
    t.read(1097347)
    assert t.read(0) == temperature.TEMP_FALLBACK and t.mc == 30000  # shorted
    assert t.read(10 ** 9) == temperature.TEMP_FALLBACK and t.fallback  # open
    assert t.read(1460680) == temperature.TEMP_FALLBACK  # 120 C: beyond high_mc
    none = temperature.Temperature(0, fixed_mc=22000)
    assert none.read(1097347) == temperature.TEMP_FALLBACK and none.mc == 22000


def test_temperature_feeds_compensation():
    t = temperature.Temperature(1000)
    t.read(1155408)  # 40 C
    assert ph.Probe().ph(-62136 * 3, t.mc) == 10000
    t.read(0)  # sensor lost: fixed 25 C
    assert ph.Probe().ph(-59160 * 3, t.mc) == 10000


def test_temperature_products_stay_small():
    # (r - r0) * 10000 with r - r0 below one table step, r scaled by at most 10 from 2e6 mOhm
    steps = [temperature._PT1000_MOHM[k + 1] - temperature._PT1000_MOHM[k] for k in range(20)]
    assert max(steps) * 10000 + max(steps) < _SMALL
    assert 2000000 * 10 < _SMALL
    for r in (1, 80306, 157325, 2000000):
        temperature.Temperature(100).read(r)


def test_products_stay_small_at_extremes():
    peak = [0]
    orig = ph._muldiv
    ph._muldiv = _checked(orig, peak)
    try:
        for t in (-10 ** 6, ph.T_MIN, 0, 25000, ph.T_MAX, 10 ** 6):
            for acid, base in ((8500, 8500), (10500, 10500), (8500, 10500)):
                for off in (-60000, 0, 60000):
                    p = _probe_with(acid, base, off)
                    p.rail_uv = ph.E_MAX
                    for e in (-ph.E_MAX + 1, -1, 0, 1, ph.E_MAX - 1):
                        got = p.ph(e, t)
                        n = ph.nernst_uv(t)
                        s = n * (base if off - e > 0 else acid)
                        ref = 7000 + ((off - e) * 1000 * 10000 * 2 + s) // (2 * s)
                        assert abs(got - ref) <= 1, (got, ref)
        for e in (-10 ** 7, -ph.E_MAX, ph.E_MAX, 10 ** 7):
            for buf in (ph.BUF_4, ph.BUF_10):
                p = ph.Probe()
                p.calibrate(ph.BUF_7, -e, ph.T_MIN)
                p.calibrate(buf, e, ph.T_MAX)
                p.calibrate(ph.BUF_7, e, 0)
                p.calibrate(buf, -e, 50000)
        for mph in (1, 1675, 13999):  # any buffer pH the host may send, at the extreme inputs
            p = ph.Probe()
            p.calibrate(ph.BUF_7, -ph.E_MAX, ph.T_MIN, 0, 13999 - mph + 1)
            p.calibrate(ph.BUF_4, ph.E_MAX, ph.T_MAX, 0, mph)
    finally:
        ph._muldiv = orig
    assert 0 < peak[0] < _SMALL, peak[0]


def test_two_acid_buffers_calibrate_without_a_7_point():
    # an SX stage at pH 2: 4.00 as the mid point, then 1.68 (1.675 at 20 °C) on its acid side
    off = 15000
    p = ph.Probe()
    assert p.calibrate(ph.BUF_7, _electrode_uv(4000, 20000, 9700, off), 20000, 0, 4000) == 0
    assert p.calibrate(ph.BUF_4, _electrode_uv(1675, 20000, 9700, off), 20000, 0, 1675) == 0
    assert abs(p.cal.acid_slope - 9700) <= 1 and p.cal.base_slope == p.cal.acid_slope
    assert abs(p.cal.offset_uv - off) <= 2
    assert abs(p.ph(_electrode_uv(2000, 20000, 9700, off), 20000) - 2000) <= 1


def test_without_a_ph_a_slot_takes_its_nominal_buffer():
    p = ph.Probe()
    p.calibrate(ph.BUF_7, 0, 25000)
    assert p.calibrate(ph.BUF_4, _electrode_uv(4000, 25000, 9800), 25000) == 0
    assert abs(p.cal.acid_slope - 9800) <= 1 and p.cal.low_mph == 4000
