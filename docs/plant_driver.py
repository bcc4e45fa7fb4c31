"""A plant for one stage board, in plain Python: drive the unmodified firmware over its plant link.

    sxctl sim --stages 1 --plant-link --ports-file ports.json &
    python3 docs/plant_driver.py "$(jq -r '.boards[0].plant' ports.json)" &
    sxctl set --port "$(jq -r .bus ports.json)" --addr 1 link_timeout=0 ph_high_trip=14 \\
        ph_setpoint=7 mode=auto
"""
import os
import struct
import sys

SENSE = struct.Struct("<BBHIiiiHH")   # magic 'S', flags, reserved, time_ms, ph_uv, orp_uv, rtd_mohm, pulses
ACT = struct.Struct("<BBBBIHHBBH")    # magic 'A', enabled, valves, mode, time_ms, base_dose, reagent, pumps
link = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
ph, time_ms, fraction = 3.0, 0, 0.0   # a toy tank: acidic feed, base dose raises its pH
while True:
    e_uv = round((7.0 - ph) * 59160)  # Nernstian electrode at 25 °C, board calibration at factory default
    fraction += 450 * 1.0 / 60        # 1.0 L/min of feed through a 450 pulses/L meter, per 1 s tick
    pulses, fraction = int(fraction), fraction - int(fraction)
    os.write(link, SENSE.pack(0x53, 0, 0, time_ms, e_uv, 0, 1097350, pulses, 0))
    act = b""
    while len(act) < ACT.size:        # lock-step: the board answers every SENSE once its scans ran
        act += os.read(link, ACT.size - len(act))
    magic, enabled, valves, mode, answered_ms, base_dose = ACT.unpack(act)[:6]
    dose = base_dose / 100.0 if enabled else 0.0                # mL/min
    ph += (3.0 + dose / 50.0 - ph) / 120.0                      # 2 min time constant, 1 s tick
    time_ms += 1000
    if time_ms % 60000 == 0:
        print("t=%4d s  pH %.3f  base %.2f mL/min  mode %d" % (time_ms // 1000, ph, dose, mode), flush=True)
