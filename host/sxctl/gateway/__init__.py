"""The plant gateway behind `sxctl serve`: a small core that owns the bus (core.py: the bus
thread, the logger's rounds, the clients' requests in between, the stage states it keeps) and one
module per face, each started and stopped with the core: the client API (api.py), the Modbus TCP
server (modbus.py, map in registers.py); state.py says where a running gateway is."""
