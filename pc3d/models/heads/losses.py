"""CenterPoint losses: Gaussian focal loss on heatmaps, masked L1 on regressions at GT centre cells."""
import torch


def gaussian_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, gamma: float = 4.0) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss, summed and divided by the number of peaks (>= 1).

    Args:
        logits: (B, K, H, W) raw heatmap logits.
        target: (B, K, H, W) float32 Gaussian heatmaps, exactly 1 at object centres.
    """
    # logsigmoid is exact where sigmoid saturates, so no probability clamping is needed.
    log_p, log_not_p = torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos = target.eq(1).float()
    pos_loss = -(log_p * (1 - p) ** alpha * pos).sum()
    neg_loss = -(log_not_p * p ** alpha * (1 - target) ** gamma * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def masked_l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, code_weights: torch.Tensor) -> torch.Tensor:
    """Sum of weighted |pred - target| over valid objects, divided by their number (>= 1).

    Args:
        pred, target: (B, M, CODE_SIZE) float32; mask: (B, M) bool valid objects;
        code_weights: (CODE_SIZE,) per-column weights.

    A NaN target entry (a box whose velocity is unknown) adds nothing and sends no gradient; the object
    still counts in the divisor, so its other columns weigh the same as everyone else's.
    """
    known = ~torch.isnan(target)
    # where() on both sides: a NaN in the unselected branch would still poison the gradient otherwise.
    diff = torch.where(known, pred - torch.where(known, target, torch.zeros_like(target)), torch.zeros_like(pred))
    err = diff.abs() * code_weights * mask.unsqueeze(-1).float()
    return err.sum() / mask.sum().clamp(min=1)
