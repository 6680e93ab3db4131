"""The categorical side path: the Multi-modal Residual Perceptron Network (Chang & Skarbek 2021).

``corpora`` (clip corpora: RAVDESS, CREMA-D, the generated demo set), ``inputs`` (per-clip
spectrogram, LLD and face sequences), ``extractors`` (the per-modality CNNs), ``networks`` (N1,
N2, N3 = MRPN, late fusion) and ``training``. Its stages are ``demo_clips``, ``clips`` and
``mrpn`` in :mod:`recola_pipeline.stages`; it shares the crop engine and the openSMILE code of
the continuous path (:mod:`recola_pipeline.extractors`).
"""
