"""A preallocated ring of fixed-size packed records numbered from 1; the oldest is overwritten.

The telemetry backlog (read after an outage) and the event queue are both such rings:
storing a record allocates nothing.
"""


class RecordRing:
    def __init__(self, capacity, record_size):
        self.capacity = capacity
        self.record_size = record_size
        self.ring = bytearray(capacity * record_size)
        self.latest = 0  # number of the newest record; 0 when empty

    @property
    def oldest(self):
        return max(1, self.latest - self.capacity + 1) if self.latest else 0

    def slot(self):
        """Offset where the next record goes: pack it there, then `commit()`."""
        return (self.latest % self.capacity) * self.record_size

    def commit(self):
        self.latest += 1

    def read_into(self, buf, offset, since, max_count):
        """Copy records numbered above `since`, oldest first; returns how many."""
        size = self.record_size
        seq = max(since + 1, self.oldest)
        count = 0
        while seq <= self.latest and count < max_count:
            src = ((seq - 1) % self.capacity) * size
            dst = offset + count * size
            buf[dst:dst + size] = self.ring[src:src + size]
            count += 1
            seq += 1
        return count
