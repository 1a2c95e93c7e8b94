-- The SHA-256 (lowercase hex) of each statement's PDF as the close rendered it and filed it in
-- reports/<period>/statements/<partner_id>.pdf. `payout send` attaches exactly the filed bytes
-- after checking them against it; a changed or missing file fails that message. NULL for a
-- statement closed before this migration (its PDF is rendered again from the figures at send).
ALTER TABLE statements ADD COLUMN pdf_sha256 TEXT
    CHECK (pdf_sha256 IS NULL OR length(pdf_sha256) = 64);

-- What the statement tells the partner beyond its figures: why it was not eligible for the
-- period (eligibility reason codes, `;`-joined, sorted; empty when eligible) and, for a partner
-- enrolled after the as-of date, the date its enrolment takes effect.
ALTER TABLE statements ADD COLUMN eligibility_reasons TEXT NOT NULL DEFAULT '';
ALTER TABLE statements ADD COLUMN enrolled_on TEXT;

-- The issue date (the close's date) and the issuer (name, address, contact email, payment
-- terms; JSON) as they were when the period was closed, so the statement renders the same later.
ALTER TABLE statements ADD COLUMN issued_on TEXT;
ALTER TABLE statements ADD COLUMN issuer TEXT;
