from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

ADMIN_DISABLED: ErrorReason
BAD_REQUEST: ErrorReason
CANCELED: ErrorReason
CLIENT_IN_FLIGHT_LIMITED: ErrorReason
CLIENT_RATE_LIMITED: ErrorReason
DEADLINE_EXCEEDED: ErrorReason
DESCRIPTOR: _descriptor.FileDescriptor
ERROR_REASON_UNSPECIFIED: ErrorReason
INTERNAL: ErrorReason
LEASE_BUSY: ErrorReason
LEASE_CAPACITY: ErrorReason
LEASE_LOST: ErrorReason
LEASE_MAX_AGE: ErrorReason
LEASE_NOT_FOUND: ErrorReason
LEASE_QUEUE_FULL: ErrorReason
LEASE_RELEASED: ErrorReason
LEASE_REVOKED: ErrorReason
LEASE_STORE_UNAVAILABLE: ErrorReason
QUEUE_FULL: ErrorReason
QUEUE_WAIT_EXCEEDED: ErrorReason
RENDERER_UNAVAILABLE: ErrorReason
RENDER_FAILED: ErrorReason
RESUME_OUT_OF_RANGE: ErrorReason
SHUTTING_DOWN: ErrorReason
UNAUTHENTICATED: ErrorReason
UNIMPLEMENTED: ErrorReason
VIDEO_CHANGED: ErrorReason
VIDEO_NOT_FOUND: ErrorReason

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
