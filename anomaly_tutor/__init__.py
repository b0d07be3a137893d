"""A notebook-first book and library that rebuilds five industrial visual anomaly detection papers from their parts.

Modules:

- `anomaly_tutor.papers.maae`: The unified mixed-attention autoencoder of MAAE (ICASSP 2024): frozen pretrained multi-level features, a feature fusion module, an adaptive noise generator trained against the autoencoder, and a stack of mixed (spatial + channel) attention blocks that reconstructs the features of every category with one model; configs per profile, cached features, the two-player training step, maps and scores, and switches for the paper's ablation.
- `anomaly_tutor.papers.macow`: The first full paper pipeline: a reconstructive ConvNeXtV2 U-Net with SSPCBMA and a discriminative ConvNeXtV2 U-Net, trained on four kinds of synthetic anomaly with MSdW loss weighting; configs per profile, the training step, anomaly maps and image scores, and switches for the paper's ablations.
- `anomaly_tutor.papers.mala`: MALA (IEEE Access 2023): stage 1 trains a ViT masked autoencoder with a pseudo-label prediction module on normal images of every category; stage 2 freezes the encoder and trains the decoder, with the token balance module, to draw the masks of Perlin-noise anomalies; maps, the image score of eq. 7, configs per profile, the paper's numbers and switches for its ablations.
- `anomaly_tutor.papers.siamese`: The Siamese U-Net of Lin and Lai (BMVC 2022): RD4AD's reverse-distillation teacher–student U-Net with a channel-positional attention module (CPAM) before every student stage, trained first with a contrastive loss on triplets (eq. 7) and then finetuned with a deviation loss (eq. 8); configs per profile, training, maps and scores, and switches for the paper's ablation.
- `anomaly_tutor.weighting`: How several loss terms become one number: fixed weights, Groenendijk et al.'s coefficient-of-variation (CoV) weighting, and MACoW's MSdW, which weights four loss terms within each synthesis method (α) and the synthesis methods against each other (β)."""

__version__ = "0.0.1"
