-- The redirect URI a connect session sends to Instagram, kept with the session:
-- the code exchange must repeat it exactly, even if the app's changes meanwhile.
ALTER TABLE connect_sessions ADD COLUMN redirect_uri TEXT;
