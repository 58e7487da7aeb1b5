-- 0005: the asset a charge point's readings are filed under, beside its
-- secret. A charge point's id is its OCPP identity (one namespace on the
-- central system, often the charger's serial number); its asset is an asset
-- id of its site. Rows written before get their charge point id, which was
-- the asset until then.

ALTER TABLE charge_point_secrets ADD COLUMN IF NOT EXISTS asset text;
UPDATE charge_point_secrets SET asset = charge_point WHERE asset IS NULL;
ALTER TABLE charge_point_secrets ALTER COLUMN asset SET NOT NULL;
