"""Tests for sensors.orp: calibrated potential, single-point calibration, the rail as a fault."""

from sensors import orp


def test_reads_mv_without_calibration():
    o = orp.Orp()
    assert o.read(680000) == orp.ORP_OK  # Fe2+ -> Fe3+ at 99 % vs Ag/AgCl
    assert o.uv == 680000 and o.mv == 680
    assert o.read(-680400) == orp.ORP_OK and o.mv == -680
    assert o.read(1499) == orp.ORP_OK and o.mv == 1
    assert o.read(1500) == orp.ORP_OK and o.mv == 2


def test_rail_is_a_fault_not_a_value():
    o = orp.Orp()  # ±1020 mV, "at" the rail within 1 mV
    assert o.read(500000) == orp.ORP_OK
    assert o.read(1018999) == orp.ORP_OK and not o.fault
    assert o.read(1019000) == orp.ORP_FAULT and o.fault
    assert o.mv == 1019  # value held from the last good reading
    assert o.read(1020000) == orp.ORP_FAULT
    assert o.read(-1020000) == orp.ORP_FAULT
    assert o.read(-5000000) == orp.ORP_FAULT
    assert o.read(0) == orp.ORP_OK and not o.fault


def test_cerium_needs_a_wider_board_range():
    # Ce3+ -> Ce4+ runs at +1350..+1520 mV: beyond the common ±1020 mV front end
    assert orp.Orp().read(1450000) == orp.ORP_FAULT
    wide = orp.Orp(rail_uv=2000000)
    assert wide.read(1450000) == orp.ORP_OK and wide.mv == 1450


def test_calibrate_225_solution():
    o = orp.Orp()
    assert o.calibrate(219000, orp.STD_225) == orp.CAL_OK
    assert o.offset_uv == 6000
    o.read(219000)
    assert o.mv == 225
    o.read(674000)
    assert o.mv == 680


def test_calibrate_quinhydrone():
    o = orp.Orp()
    assert orp.STD_QH_PH7 == 87000 and orp.STD_QH_PH4 == 264000
    assert o.calibrate(90000, orp.STD_QH_PH7) == orp.CAL_OK
    o.read(90000)
    assert o.mv == 87
    assert o.calibrate(260000, orp.STD_QH_PH4) == orp.CAL_OK
    o.read(260000)
    assert o.mv == 264


def test_calibrate_rejects_keep_offset():
    o = orp.Orp()
    o.calibrate(220000, orp.STD_225)
    assert o.calibrate(1019500, orp.STD_225) == orp.CAL_REJECT_RAIL
    assert o.calibrate(100000, orp.STD_225) == orp.CAL_REJECT_OFFSET  # 125 mV off
    assert o.offset_uv == 5000


def test_bad_config_raises():
    for args in ((0,), (1000, 1000), (3000000,)):
        try:
            orp.Orp(*args)
        except ValueError:
            continue
        assert False, args


def test_sums_stay_small_at_extremes():
    o = orp.Orp(rail_uv=orp.E_MAX, margin_uv=0, max_offset_uv=orp.E_MAX)
    assert o.calibrate(-orp.E_MAX + 1, orp.E_MAX - 1) == orp.CAL_REJECT_OFFSET
    assert o.calibrate(-orp.E_MAX // 2, orp.E_MAX // 2) == orp.CAL_OK
    o.read(orp.E_MAX - 1)
    assert o.uv == orp.E_MAX - 1 + orp.E_MAX and abs(o.uv) < (1 << 30)
