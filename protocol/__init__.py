"""sxproto: the sxctl wire protocol, defined once with construct.

`messages` declares every message, `framing` the frame around it, `codec` the fast host
codec, and `codegen` derives the firmware's codec (firmware/proto.py) from the same
declarations.
"""
