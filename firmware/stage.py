"""The stage as the bus sees it: live values in protocol units, kept by the control loop."""
import struct

import proto


class Stage:
    def __init__(self):
        self.ph = 0               # 0.001 pH
        self.ph_setpoint = 0      # 0.001 pH
        self.orp_mv = 0
        self.temperature = 2500   # 0.01 °C
        self.flow_aq = 0          # mL/min
        self.flow_org = 0
        self.base_dose = 0        # 0.01 mL/min
        self.reagent_dose = 0
        self.aq_pump = 0          # 0.5 %
        self.org_pump = 0
        self.valves = 0
        self.mode = proto.MODE_OFF  # a reset leaves every output off
        self.manual_output = 0
        # Alarm bits in two states (control/alarms.py): condition present now, and raised but not
        # yet acknowledged. The pH fault shows until a valid measurement arrives.
        self.alarms_active = proto.ALARM_PH_SENSOR_FAULT
        self.alarms_unacked = 0
        self.cal_id = 0

    def pack(self, buf, offset, record, time_s):
        """Write a TELEMETRY record at buf[offset:]; allocates nothing."""
        struct.pack_into(proto.TELEMETRY_FMT, buf, offset, record, time_s, self.ph, self.ph_setpoint,
                         self.orp_mv, self.temperature, self.flow_aq, self.flow_org, self.base_dose,
                         self.reagent_dose, self.aq_pump, self.org_pump, self.valves, self.mode,
                         self.alarms_active, self.alarms_unacked)
