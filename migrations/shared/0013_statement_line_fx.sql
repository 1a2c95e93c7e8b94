-- What a partner needs to check a statement row (issue 14): the billing month of its lines
-- (late lines are grouped per billing month), and for a row converted from its line currency
-- to the payout currency, the FX rate applied exactly as the FX file wrote it and the period
-- that rate is keyed by (`fx_rates.csv` `period`, the billing month, SPEC §3).
-- NULL billing_month: a row closed before this migration, which did not record them. A row
-- written since always has its billing month; fx_rate and fx_period are set together, on a
-- converted row that earns, and nowhere else.
ALTER TABLE statement_lines ADD COLUMN billing_month TEXT
    CHECK (billing_month IS NULL OR length(billing_month) = 7);
ALTER TABLE statement_lines ADD COLUMN fx_rate TEXT;
ALTER TABLE statement_lines ADD COLUMN fx_period TEXT
    CHECK (fx_period IS NULL OR length(fx_period) = 7);
