-- The device's APNs topic (its `_Installation.apnsTopic`, the app's bundle id) on each push job: an app with
-- several bundles (a debug build beside the store one) is pushed under the right one. Schema version 14.
ALTER TABLE push_jobs ADD COLUMN topic TEXT;

PRAGMA user_version = 14;
