"""Context Encoder (Pathak et al., CVPR 2016), the inpainting baseline of PAN's Fig. 4.

PAN's comparison trains every baseline "with the same networks architecture
and training details" as PAN itself, so this is not Pathak et al.'s
AlexNet-style encoder: it is the recipe's U-Net generator and one 70x70
PatchGAN, with the Context Encoder objective:

* ``l2_hole``: L2 reconstruction on the hole only (`tfi2i.losses.masked_l2_loss`,
  needs ``batch["mask"]``, which the ``inpainting`` data task provides);
* ``g_gan`` / ``d_real`` / ``d_fake``: an unconditional adversarial loss
  (D judges the generated image alone, as Context Encoder's D judges the
  prediction, not an (input, output) pair);
* joint weights lambda_rec = 0.999, lambda_adv = 0.001 (their Section 3.3).
"""

from tfi2i import losses
from tfi2i.gan import PairedGAN, outputs_of

#: Pathak et al. Section 3.3: lambda_rec = 0.999, lambda_adv = 0.001; D terms unhalved (their code sums them).
CONTEXT_ENCODER_WEIGHTS = {"l2_hole": 0.999, "g_gan": 0.001, "d_real": 1.0, "d_fake": 1.0}


class ContextEncoder(PairedGAN):
    """Masked L2 + unconditional adversarial loss on `PairedGAN`'s train step."""

    def __init__(self, generator, discriminator, loss_weights=None, gan_mode="vanilla", **kwargs):
        kwargs["conditional"] = False
        super().__init__(generator, discriminator, loss_weights or CONTEXT_ENCODER_WEIGHTS, gan_mode=gan_mode, **kwargs)

    def generator_terms(self, batch, y_fake, training=True):
        y_fake = outputs_of(y_fake)["y"]
        if "mask" not in batch:
            raise ValueError("ContextEncoder needs batch['mask'] (1 inside the hole): use data.task=inpainting")
        terms = {"l2_hole": losses.masked_l2_loss(batch["y"], y_fake, batch["mask"])}
        if self.active("g_gan"):
            terms["g_gan"] = losses.g_adversarial_loss(self.discriminate(batch, y_fake, training), self.gan_mode)
        return terms
