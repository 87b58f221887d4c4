"""HDF5 files shared by the stages: common helpers and reader base (:mod:`.hdf5`), the relevance file
(:mod:`.relevance`).  The features file lives in :mod:`scatterxai.features.store`."""
