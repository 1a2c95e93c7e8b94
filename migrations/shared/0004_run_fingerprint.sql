-- A draft's fingerprint: its period, inputs and the store state it was computed from. A later
-- draft with the same fingerprint leaves the published reports as they are.
ALTER TABLE runs ADD COLUMN fingerprint TEXT;
