"""The identity check (rule D2, clauses 7.5 and 4.7; consent B1, 6.6).

On the secretary's request the server decodes a short burst of the student's live
video, picks the sharpest frame and compares the live face with the passport photo
held beside it. The verdict (match, no match, retake with an instruction) only
advises: the secretary decides, through the procedure's ``identity`` command.

Modules: ``settings`` (the config section), ``verdict`` (what a check finds),
``quality`` and ``faces`` (measures and the face model), ``analysis`` (one frame),
``worker`` (what runs in the worker process), ``capture`` (the burst, on the event
loop), ``store`` (stored checks), ``service`` (`IdentityChecks`), ``compose`` (built
frames for tests, calibration and the bench). Only ``faces`` and what imports it
load face_recognition; the server process never does.
"""
