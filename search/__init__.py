"""The search core (numpy only, no torch): what the gallery, the evaluation, training's evaluation and the app share.

- :mod:`.request`: the :class:`Request` and the one parser of ``attr=value`` / ``region:attr=value``
  (:class:`~fashionsearchnet.errors.RequestError` names the entry and the valid choices).
- :mod:`.params`: :class:`SearchParams` (prototypes, lam, W, region weight) and its one ``params.npz`` loader.
- :mod:`.table`: :class:`FeatureTable`, the per-image features a search reads.
- :mod:`.projection`: the global representation of eq. 7, written once.
- :mod:`.scorers`: one scorer per method (attribute, no_aam, fsn, fsn_region), chosen in :func:`scorers.scorer`.
- :mod:`.compose`: composed queries (no image): described values take their prototypes, unset ones are left out
  (or neutral); the scorer of a search whose query is ``None``.
- :mod:`.exact`: exact top-k (float32 screening + float64 re-scoring) and :class:`ExactSearcher`.

Layering (tests/test_dependencies.py): this package imports only ``fashionsearchnet.data`` and the package's
root modules (errors, whole_numbers); runtime, gallery, evaluation, training and the app import it.
"""
