;; rtdlab's SIMD kernels for the wasm backend, run on tfjs-backend-wasm's own memory (imported), so
;; they read and write tensors where they lie. Source of lib/backend/wasm_simd_bytes.ts, which
;; `deno run -A lib/backend/wasm_simd_build.ts` regenerates (tests/wasm_simd_test.ts checks they agree).
;;
;; Dropout's mask is lib/backend/dropout_mask.ts's, bit for bit: element i is kept (value `scale`)
;; iff (h(i) >>> 8) >= threshold, else 0, with h(i) = mix(mix(i ^ k0) + k1) and mix the "lowbias32"
;; finaliser. Four elements per instruction (i32x4); the last n mod 4 in scalar code.
(module
  (import "env" "memory" (memory 0))

  ;; lowbias32 on four lanes.
  (func $mix4 (param $x v128) (result v128)
    (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
    (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x7feb352d 0x7feb352d 0x7feb352d 0x7feb352d)))
    (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 15))))
    (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x846ca68b 0x846ca68b 0x846ca68b 0x846ca68b)))
    (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))

  ;; lowbias32 on one value.
  (func $mix (param $x i32) (result i32)
    (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 16))))
    (local.set $x (i32.mul (local.get $x) (i32.const 0x7feb352d)))
    (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 15))))
    (local.set $x (i32.mul (local.get $x) (i32.const 0x846ca68b)))
    (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 16))))

  ;; The masks of elements idx..idx+3: all ones where kept, else 0.
  (func $keep4 (param $idx v128) (param $k0 v128) (param $k1 v128) (param $thr v128) (result v128)
    (i32x4.ge_u
      (i32x4.shr_u
        (call $mix4 (i32x4.add (call $mix4 (v128.xor (local.get $idx) (local.get $k0))) (local.get $k1)))
        (i32.const 8))
      (local.get $thr)))

  ;; The multiplier of element i: scale where kept, else 0.
  (func $mask1 (param $i i32) (param $k0 i32) (param $k1 i32) (param $thr i32) (param $scale f32) (result f32)
    (select
      (local.get $scale)
      (f32.const 0)
      (i32.ge_u
        (i32.shr_u
          (call $mix (i32.add (call $mix (i32.xor (local.get $i) (local.get $k0))) (local.get $k1)))
          (i32.const 8))
        (local.get $thr))))

  ;; out[i] = the multiplier of element i, for i < n (out: a byte address of float32s).
  (func (export "dropout_mask")
    (param $out i32) (param $n i32) (param $k0 i32) (param $k1 i32) (param $thr i32) (param $scale f32)
    (local $i i32) (local $n4 i32) (local $idx v128)
    (local $vk0 v128) (local $vk1 v128) (local $vthr v128) (local $vscale v128)
    (local.set $vk0 (i32x4.splat (local.get $k0)))
    (local.set $vk1 (i32x4.splat (local.get $k1)))
    (local.set $vthr (i32x4.splat (local.get $thr)))
    (local.set $vscale (f32x4.splat (local.get $scale)))
    (local.set $idx (v128.const i32x4 0 1 2 3))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (v128.store align=4
          (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (v128.and
            (call $keep4 (local.get $idx) (local.get $vk0) (local.get $vk1) (local.get $vthr))
            (local.get $vscale)))
        (local.set $idx (i32x4.add (local.get $idx) (v128.const i32x4 4 4 4 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (block $end
      (loop $one
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store
          (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
          (call $mask1 (local.get $i) (local.get $k0) (local.get $k1) (local.get $thr) (local.get $scale)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one))))

  ;; out[i] = x[i] · (the multiplier of element i), for i < n: dropout without a mask tensor, the same
  ;; bits as multiplying by the mask (a NaN or infinite x dropped gives NaN, as x·0 does).
  (func (export "dropout")
    (param $x i32) (param $out i32) (param $n i32) (param $k0 i32) (param $k1 i32) (param $thr i32)
    (param $scale f32)
    (local $i i32) (local $n4 i32) (local $at i32) (local $idx v128)
    (local $vk0 v128) (local $vk1 v128) (local $vthr v128) (local $vscale v128)
    (local.set $vk0 (i32x4.splat (local.get $k0)))
    (local.set $vk1 (i32x4.splat (local.get $k1)))
    (local.set $vthr (i32x4.splat (local.get $thr)))
    (local.set $vscale (f32x4.splat (local.get $scale)))
    (local.set $idx (v128.const i32x4 0 1 2 3))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $four
        (br_if $done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (v128.store align=4
          (i32.add (local.get $out) (local.get $at))
          (f32x4.mul
            (v128.load align=4 (i32.add (local.get $x) (local.get $at)))
            (v128.and
              (call $keep4 (local.get $idx) (local.get $vk0) (local.get $vk1) (local.get $vthr))
              (local.get $vscale))))
        (local.set $idx (i32x4.add (local.get $idx) (v128.const i32x4 4 4 4 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (block $end
      (loop $one
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.shl (local.get $i) (i32.const 2)))
        (f32.store
          (i32.add (local.get $out) (local.get $at))
          (f32.mul
            (f32.load (i32.add (local.get $x) (local.get $at)))
            (call $mask1 (local.get $i) (local.get $k0) (local.get $k1) (local.get $thr) (local.get $scale))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one))))

  ;; The sum of v's four lanes added one by one to acc, in lane order: a row's sum in the order a
  ;; sequential loop takes (tfjs-backend-wasm's Mean and Sum), so results match them bit for bit.
  (func $addLanes (param $acc f32) (param $v v128) (result f32)
    (f32.add
      (f32.add
        (f32.add (f32.add (local.get $acc) (f32x4.extract_lane 0 (local.get $v))) (f32x4.extract_lane 1 (local.get $v)))
        (f32x4.extract_lane 2 (local.get $v)))
      (f32x4.extract_lane 3 (local.get $v))))

  ;; LayerNorm over rows of `cols` floats, as tfjs's ops compute it (lib/model/layers.ts layerNormOp):
  ;; s = x, or with mode & 1: s = x + t, t = h (mode & 2: + hb[col]; mode & 4: · dropout multiplier of
  ;; the element's flat index); mean = Σ s / cols; c = s − mean; var = Σ c² / cols; rstd = 1/√(var + eps);
  ;; xhat = c·rstd; y = xhat·gamma + beta. Sums run in column order, every operation in float32.
  (func (export "layer_norm")
    (param $x i32) (param $h i32) (param $hb i32) (param $gamma i32) (param $beta i32)
    (param $y i32) (param $xhat i32) (param $rstd i32) (param $rows i32) (param $cols i32) (param $eps f32)
    (param $mode i32) (param $k0 i32) (param $k1 i32) (param $thr i32) (param $scale f32)
    (local $r i32) (local $j i32) (local $cols4 i32) (local $row i32) (local $at i32) (local $base i32)
    (local $sum f32) (local $mean f32) (local $rs f32) (local $fcols f32) (local $sc f32) (local $tc f32)
    (local $s v128) (local $t v128) (local $vmean v128) (local $vrs v128)
    (local $vk0 v128) (local $vk1 v128) (local $vthr v128) (local $vscale v128)
    (local.set $vk0 (i32x4.splat (local.get $k0)))
    (local.set $vk1 (i32x4.splat (local.get $k1)))
    (local.set $vthr (i32x4.splat (local.get $thr)))
    (local.set $vscale (f32x4.splat (local.get $scale)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $fcols (f32.convert_i32_u (local.get $cols)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $base (i32.mul (local.get $r) (local.get $cols)))
        (local.set $row (i32.shl (local.get $base) (i32.const 2)))
        ;; Pass 1: s (kept in y) and its sum.
        (local.set $sum (f32.const 0))
        (local.set $j (i32.const 0))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $j) (local.get $cols4)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $s (v128.load align=4 (i32.add (local.get $x) (local.get $at))))
          (if (i32.and (local.get $mode) (i32.const 1)) (then
            (local.set $t (v128.load align=4 (i32.add (local.get $h) (local.get $at))))
            (if (i32.and (local.get $mode) (i32.const 2)) (then
              (local.set $t (f32x4.add (local.get $t)
                (v128.load align=4 (i32.add (local.get $hb) (i32.shl (local.get $j) (i32.const 2))))))))
            (if (i32.and (local.get $mode) (i32.const 4)) (then
              (local.set $t (f32x4.mul (local.get $t)
                (v128.and
                  (call $keep4
                    (i32x4.add (i32x4.splat (i32.add (local.get $base) (local.get $j))) (v128.const i32x4 0 1 2 3))
                    (local.get $vk0) (local.get $vk1) (local.get $vthr))
                  (local.get $vscale))))))
            (local.set $s (f32x4.add (local.get $s) (local.get $t)))))
          (v128.store align=4 (i32.add (local.get $y) (local.get $at)) (local.get $s))
          (local.set $sum (call $addLanes (local.get $sum) (local.get $s)))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l1)))
        (block $d1t (loop $l1t
          (br_if $d1t (i32.ge_u (local.get $j) (local.get $cols)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $sc (f32.load (i32.add (local.get $x) (local.get $at))))
          (if (i32.and (local.get $mode) (i32.const 1)) (then
            (local.set $tc (f32.load (i32.add (local.get $h) (local.get $at))))
            (if (i32.and (local.get $mode) (i32.const 2)) (then
              (local.set $tc (f32.add (local.get $tc)
                (f32.load (i32.add (local.get $hb) (i32.shl (local.get $j) (i32.const 2))))))))
            (if (i32.and (local.get $mode) (i32.const 4)) (then
              (local.set $tc (f32.mul (local.get $tc)
                (call $mask1 (i32.add (local.get $base) (local.get $j))
                  (local.get $k0) (local.get $k1) (local.get $thr) (local.get $scale))))))
            (local.set $sc (f32.add (local.get $sc) (local.get $tc)))))
          (f32.store (i32.add (local.get $y) (local.get $at)) (local.get $sc))
          (local.set $sum (f32.add (local.get $sum) (local.get $sc)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l1t)))
        (local.set $mean (f32.div (local.get $sum) (local.get $fcols)))
        (local.set $vmean (f32x4.splat (local.get $mean)))
        ;; Pass 2: c = s − mean (kept in xhat) and Σ c².
        (local.set $sum (f32.const 0))
        (local.set $j (i32.const 0))
        (block $d2 (loop $l2
          (br_if $d2 (i32.ge_u (local.get $j) (local.get $cols4)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $s (f32x4.sub (v128.load align=4 (i32.add (local.get $y) (local.get $at))) (local.get $vmean)))
          (v128.store align=4 (i32.add (local.get $xhat) (local.get $at)) (local.get $s))
          (local.set $sum (call $addLanes (local.get $sum) (f32x4.mul (local.get $s) (local.get $s))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l2)))
        (block $d2t (loop $l2t
          (br_if $d2t (i32.ge_u (local.get $j) (local.get $cols)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $sc (f32.sub (f32.load (i32.add (local.get $y) (local.get $at))) (local.get $mean)))
          (f32.store (i32.add (local.get $xhat) (local.get $at)) (local.get $sc))
          (local.set $sum (f32.add (local.get $sum) (f32.mul (local.get $sc) (local.get $sc))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l2t)))
        (local.set $rs
          (f32.div (f32.const 1)
            (f32.sqrt (f32.add (f32.div (local.get $sum) (local.get $fcols)) (local.get $eps)))))
        (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))) (local.get $rs))
        (local.set $vrs (f32x4.splat (local.get $rs)))
        ;; Pass 3: xhat = c·rstd, y = xhat·gamma + beta.
        (local.set $j (i32.const 0))
        (block $d3 (loop $l3
          (br_if $d3 (i32.ge_u (local.get $j) (local.get $cols4)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $s (f32x4.mul (v128.load align=4 (i32.add (local.get $xhat) (local.get $at))) (local.get $vrs)))
          (v128.store align=4 (i32.add (local.get $xhat) (local.get $at)) (local.get $s))
          (v128.store align=4 (i32.add (local.get $y) (local.get $at))
            (f32x4.add
              (f32x4.mul (local.get $s)
                (v128.load align=4 (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2)))))
              (v128.load align=4 (i32.add (local.get $beta) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l3)))
        (block $d3t (loop $l3t
          (br_if $d3t (i32.ge_u (local.get $j) (local.get $cols)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $sc (f32.mul (f32.load (i32.add (local.get $xhat) (local.get $at))) (local.get $rs)))
          (f32.store (i32.add (local.get $xhat) (local.get $at)) (local.get $sc))
          (f32.store (i32.add (local.get $y) (local.get $at))
            (f32.add
              (f32.mul (local.get $sc) (f32.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2)))))
              (f32.load (i32.add (local.get $beta) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l3t)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop))))

  ;; LayerNorm's backward pass as layerNormOp's gradient computes it: dxhat = dy·gamma;
  ;; m1 = Σ dxhat / cols, m2 = Σ dxhat·xhat / cols (column order); dx = ((dxhat − m1) − xhat·m2)·rstd;
  ;; and gx = dy·xhat, whose column sums are gamma's gradient (the caller sums them as columnSums does).
  (func (export "layer_norm_grad")
    (param $dy i32) (param $xhat i32) (param $rstd i32) (param $gamma i32) (param $dx i32) (param $gx i32)
    (param $rows i32) (param $cols i32)
    (local $r i32) (local $j i32) (local $cols4 i32) (local $row i32) (local $at i32) (local $gat i32)
    (local $m1 f32) (local $m2 f32) (local $rs f32) (local $fcols f32) (local $gc f32) (local $dyc f32) (local $xc f32)
    (local $g v128) (local $d v128) (local $xv v128) (local $vm1 v128) (local $vm2 v128) (local $vrs v128)
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $fcols (f32.convert_i32_u (local.get $cols)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2)))
        (local.set $m1 (f32.const 0))
        (local.set $m2 (f32.const 0))
        (local.set $j (i32.const 0))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $j) (local.get $cols4)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $g (f32x4.mul (v128.load align=4 (i32.add (local.get $dy) (local.get $at)))
            (v128.load align=4 (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $m1 (call $addLanes (local.get $m1) (local.get $g)))
          (local.set $m2 (call $addLanes (local.get $m2)
            (f32x4.mul (local.get $g) (v128.load align=4 (i32.add (local.get $xhat) (local.get $at))))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l1)))
        (block $d1t (loop $l1t
          (br_if $d1t (i32.ge_u (local.get $j) (local.get $cols)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $gc (f32.mul (f32.load (i32.add (local.get $dy) (local.get $at)))
            (f32.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $m1 (f32.add (local.get $m1) (local.get $gc)))
          (local.set $m2 (f32.add (local.get $m2)
            (f32.mul (local.get $gc) (f32.load (i32.add (local.get $xhat) (local.get $at))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l1t)))
        (local.set $vm1 (f32x4.splat (f32.div (local.get $m1) (local.get $fcols))))
        (local.set $vm2 (f32x4.splat (f32.div (local.get $m2) (local.get $fcols))))
        (local.set $rs (f32.load (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $vrs (f32x4.splat (local.get $rs)))
        (local.set $j (i32.const 0))
        (block $d2 (loop $l2
          (br_if $d2 (i32.ge_u (local.get $j) (local.get $cols4)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $gat (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $d (v128.load align=4 (i32.add (local.get $dy) (local.get $at))))
          (local.set $xv (v128.load align=4 (i32.add (local.get $xhat) (local.get $at))))
          (local.set $g (f32x4.mul (local.get $d) (v128.load align=4 (local.get $gat))))
          (v128.store align=4 (i32.add (local.get $dx) (local.get $at))
            (f32x4.mul
              (f32x4.sub (f32x4.sub (local.get $g) (local.get $vm1)) (f32x4.mul (local.get $xv) (local.get $vm2)))
              (local.get $vrs)))
          (v128.store align=4 (i32.add (local.get $gx) (local.get $at)) (f32x4.mul (local.get $d) (local.get $xv)))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l2)))
        (block $d2t (loop $l2t
          (br_if $d2t (i32.ge_u (local.get $j) (local.get $cols)))
          (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $dyc (f32.load (i32.add (local.get $dy) (local.get $at))))
          (local.set $xc (f32.load (i32.add (local.get $xhat) (local.get $at))))
          (local.set $gc (f32.mul (local.get $dyc)
            (f32.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2))))))
          (f32.store (i32.add (local.get $dx) (local.get $at))
            (f32.mul
              (f32.sub (f32.sub (local.get $gc) (f32x4.extract_lane 0 (local.get $vm1)))
                (f32.mul (local.get $xc) (f32x4.extract_lane 0 (local.get $vm2))))
              (local.get $rs)))
          (f32.store (i32.add (local.get $gx) (local.get $at)) (f32.mul (local.get $dyc) (local.get $xc)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l2t)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop))))

  ;; out[col] = Σ_rows x[row, col], rows in order (as rtdlab's one-segment UnsortedSegmentSum adds them).
  (func (export "column_sums") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $j i32) (local $cols4 i32) (local $row i32)
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (memory.fill (local.get $out) (i32.const 0) (i32.shl (local.get $cols) (i32.const 2)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.add (local.get $x) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $d (loop $l
          (br_if $d (i32.ge_u (local.get $j) (local.get $cols4)))
          (v128.store align=4 (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
            (f32x4.add
              (v128.load align=4 (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
              (v128.load align=4 (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l)))
        (block $dt (loop $lt
          (br_if $dt (i32.ge_u (local.get $j) (local.get $cols)))
          (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
            (f32.add
              (f32.load (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))))
              (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $lt)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop))))

  ;; out[r] = Σ_j x[r, j] over `cols` float32s, j in order from 0.0, one float32 add at a time: the sums
  ;; of tfjs-backend-wasm's Sum over the innermost axis, bit for bit. One row's chain of dependent adds
  ;; is what makes that kernel slow (8,192 adds of ~4 cycles each per row); here four rows run side by
  ;; side, one per lane, each lane still adding its row's values in order: a 4×4 block of four rows is
  ;; transposed so that each f32x4.add takes the next column of all four.
  (func (export "row_sums") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $j i32) (local $rows4 i32) (local $cols4 i32) (local $stride i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128) (local $acc v128) (local $s f32)
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $stride (i32.shl (local.get $cols) (i32.const 2)))
    (block $groupsDone (loop $group
      (br_if $groupsDone (i32.ge_u (local.get $r) (local.get $rows4)))
      (local.set $p0 (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $stride))))
      (local.set $p1 (i32.add (local.get $p0) (local.get $stride)))
      (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))
      (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $a0 (v128.load align=4 (local.get $p0)))
        (local.set $a1 (v128.load align=4 (local.get $p1)))
        (local.set $a2 (v128.load align=4 (local.get $p2)))
        (local.set $a3 (v128.load align=4 (local.get $p3)))
        ;; t0 = [a0.0 a1.0 a0.1 a1.1], t1 = [a0.2 a1.2 a0.3 a1.3]; t2, t3 the same for rows 2 and 3.
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
        ;; Columns j, j+1, j+2, j+3 of the four rows, added in that order.
        (local.set $acc (f32x4.add (local.get $acc)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2))))
        (local.set $acc (f32x4.add (local.get $acc)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2))))
        (local.set $acc (f32x4.add (local.get $acc)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3))))
        (local.set $acc (f32x4.add (local.get $acc)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l)))
      ;; The last cols mod 4 columns, one column of the four rows at a time.
      (block $dt (loop $lt
        (br_if $dt (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $acc (f32x4.add (local.get $acc)
          (v128.load32_lane 3 (local.get $p3)
            (v128.load32_lane 2 (local.get $p2)
              (v128.load32_lane 1 (local.get $p1) (v128.load32_zero (local.get $p0)))))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lt)))
      (v128.store align=4 (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $acc))
      (local.set $r (i32.add (local.get $r) (i32.const 4)))
      (br $group)))
    ;; The last rows mod 4 rows, one at a time.
    (block $rowsDone (loop $row
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $p0 (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $stride))))
      (local.set $s (f32.const 0))
      (local.set $j (i32.const 0))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $j) (local.get $cols)))
        (local.set $s (f32.add (local.get $s) (f32.load (local.get $p0))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l1)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $s))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $row))))

  ;; max over the n float32s at x, skipping index `banned` (−1: none) and NaNs, −∞ when nothing is left:
  ;; the maximum lib/train/sampling.ts's host loop finds (up to the sign of a zero maximum, which no
  ;; weight depends on: x − (+0) = x − (−0) but for x = −0, and e^{±0} = 1).
  (func (export "masked_max") (param $x i32) (param $n i32) (param $banned i32) (result f32)
    (local $i i32) (local $n4 i32) (local $acc v128) (local $idx v128) (local $v v128) (local $m f32) (local $e f32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $acc (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $idx (v128.const i32x4 0 1 2 3))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (local.get $n4)))
      (local.set $v (v128.load align=4 (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
      ;; The banned lane becomes −∞; pmax(acc, v) = acc < v ? v : acc keeps acc against a NaN.
      (local.set $v (v128.bitselect (v128.const f32x4 -inf -inf -inf -inf) (local.get $v)
        (i32x4.eq (local.get $idx) (i32x4.splat (local.get $banned)))))
      (local.set $acc (f32x4.pmax (local.get $acc) (local.get $v)))
      (local.set $idx (i32x4.add (local.get $idx) (v128.const i32x4 4 4 4 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (local.set $m (f32x4.extract_lane 0 (local.get $acc)))
    (if (f32.gt (f32x4.extract_lane 1 (local.get $acc)) (local.get $m)) (then (local.set $m (f32x4.extract_lane 1 (local.get $acc)))))
    (if (f32.gt (f32x4.extract_lane 2 (local.get $acc)) (local.get $m)) (then (local.set $m (f32x4.extract_lane 2 (local.get $acc)))))
    (if (f32.gt (f32x4.extract_lane 3 (local.get $acc)) (local.get $m)) (then (local.set $m (f32x4.extract_lane 3 (local.get $acc)))))
    (block $dt (loop $lt
      (br_if $dt (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $e (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
      (if (i32.and (i32.ne (local.get $i) (local.get $banned)) (f32.gt (local.get $e) (local.get $m)))
        (then (local.set $m (local.get $e))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $lt)))
    (local.get $m))

  ;; The sampler's running sums of weights for two rows at once, one per lane (lib/train/sampling.ts,
  ;; the same float64 operations in the same order, so the same bits): for v < n,
  ;;   x = (row[v] − max) / T,  w = 0 at the banned index, else e^x by that file's expNonPositive,
  ;;   total += w,  weights[2v + lane] = total.
  ;; `c` holds that exp's constants: 32 values 2^(j/32), then 32/ln 2, ln 2/32 high and low, 1/2, 1/6,
  ;; 1/24, 1/120, 1/720 and 1.5·2^52. Returns a bit per lane (1, 2) whose row had an x outside
  ;; (−700, 0] or NaN, where the host loop takes Math.exp: the caller redoes that row on the host. T = 1
  ;; (divide = 0) skips the division, which would not change x.
  (func (export "sample_weights")
    (param $x0 i32) (param $x1 i32) (param $n i32) (param $banned0 i32) (param $banned1 i32)
    (param $max0 f32) (param $max1 f32) (param $temperature f64) (param $divide i32) (param $c i32)
    (param $weights i32) (result i32)
    (local $v i32) (local $xd v128) (local $mx v128) (local $t v128) (local $kf v128) (local $r v128)
    (local $er v128) (local $tab v128) (local $w v128) (local $total v128)
    (local $ban v128) (local $vv v128) (local $bans v128) (local $temp v128) (local $out i32)
    (local $lo v128) (local $hi v128) (local $xr v128)
    (local $scale v128) (local $ln2hi v128) (local $ln2lo v128) (local $round v128)
    (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $c6 v128)
    (local.set $scale (v128.load64_splat offset=256 (local.get $c)))
    (local.set $ln2hi (v128.load64_splat offset=264 (local.get $c)))
    (local.set $ln2lo (v128.load64_splat offset=272 (local.get $c)))
    (local.set $c2 (v128.load64_splat offset=280 (local.get $c)))
    (local.set $c3 (v128.load64_splat offset=288 (local.get $c)))
    (local.set $c4 (v128.load64_splat offset=296 (local.get $c)))
    (local.set $c5 (v128.load64_splat offset=304 (local.get $c)))
    (local.set $c6 (v128.load64_splat offset=312 (local.get $c)))
    (local.set $round (v128.load64_splat offset=320 (local.get $c)))
    (local.set $lo (v128.const f64x2 0 0))
    (local.set $hi (v128.const f64x2 -1 -1))
    (local.set $mx (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (local.get $max0))) (f64.promote_f32 (local.get $max1))))
    (local.set $bans (i64x2.replace_lane 1 (i64x2.splat (i64.extend_i32_s (local.get $banned0))) (i64.extend_i32_s (local.get $banned1))))
    (local.set $temp (f64x2.splat (local.get $temperature)))
    (local.set $out (local.get $weights))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $v) (local.get $n)))
      (local.set $xd (f64x2.sub
        (f64x2.replace_lane 1
          (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $x0) (i32.shl (local.get $v) (i32.const 2))))))
          (f64.promote_f32 (f32.load (i32.add (local.get $x1) (i32.shl (local.get $v) (i32.const 2))))))
        (local.get $mx)))
      (if (local.get $divide) (then (local.set $xd (f64x2.div (local.get $xd) (local.get $temp)))))
      (local.set $ban (i64x2.eq (local.get $vv) (local.get $bans)))
      ;; The range of x over the row, the banned lane counted as 0 (pmin and pmax skip a NaN, which
      ;; instead makes the total NaN).
      (local.set $xr (v128.andnot (local.get $xd) (local.get $ban)))
      (local.set $lo (f64x2.pmin (local.get $lo) (local.get $xr)))
      (local.set $hi (f64x2.pmax (local.get $hi) (local.get $xr)))
      ;; kf = (x·32/ln 2 + 1.5·2^52) − 1.5·2^52, an integer; r = (x − kf·ln2hi) − kf·ln2lo.
      (local.set $t (f64x2.add (f64x2.mul (local.get $xd) (local.get $scale)) (local.get $round)))
      (local.set $kf (f64x2.sub (local.get $t) (local.get $round)))
      (local.set $r (f64x2.sub
        (f64x2.sub (local.get $xd) (f64x2.mul (local.get $kf) (local.get $ln2hi)))
        (f64x2.mul (local.get $kf) (local.get $ln2lo))))
      ;; e^r = 1 + r·(1 + r·(1/2 + r·(1/6 + r·(1/24 + r·(1/120 + r·(1/720)))))).
      (local.set $er (f64x2.mul (local.get $r) (local.get $c6)))
      (local.set $er (f64x2.mul (local.get $r) (f64x2.add (local.get $c5) (local.get $er))))
      (local.set $er (f64x2.mul (local.get $r) (f64x2.add (local.get $c4) (local.get $er))))
      (local.set $er (f64x2.mul (local.get $r) (f64x2.add (local.get $c3) (local.get $er))))
      (local.set $er (f64x2.mul (local.get $r) (f64x2.add (local.get $c2) (local.get $er))))
      (local.set $er (f64x2.mul (local.get $r) (f64x2.add (v128.const f64x2 1 1) (local.get $er))))
      (local.set $er (f64x2.add (v128.const f64x2 1 1) (local.get $er)))
      ;; k = the low bits of t (1.5·2^52's low 12 bits are 0): the table's 2^((k mod 32)/32), then
      ;; 2^(k >> 5) as a float64's exponent field, n + 1023, with n = floor(kf/32) (exact) read the same way.
      (local.set $tab (f64x2.replace_lane 1
        (f64x2.splat (f64.load (i32.add (local.get $c)
          (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 0 (local.get $t))) (i32.const 31)) (i32.const 3)))))
        (f64.load (i32.add (local.get $c)
          (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 1 (local.get $t))) (i32.const 31)) (i32.const 3))))))
      (local.set $w (f64x2.mul (f64x2.mul (local.get $tab) (local.get $er))
        (i64x2.shl (i64x2.add
          (f64x2.add (f64x2.floor (f64x2.mul (local.get $kf) (v128.const f64x2 0.03125 0.03125))) (local.get $round))
          (v128.const i64x2 1023 1023)) (i32.const 52))))
      (local.set $total (f64x2.add (local.get $total) (v128.andnot (local.get $w) (local.get $ban))))
      (v128.store (local.get $out) (local.get $total))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (local.set $vv (i64x2.add (local.get $vv) (v128.const i64x2 1 1)))
      (local.set $v (i32.add (local.get $v) (i32.const 1)))
      (br $l)))
    ;; Flag a lane whose range left (−700, 0] or whose total is NaN.
    (i64x2.bitmask (v128.or
      (v128.not (v128.and
        (f64x2.gt (local.get $lo) (v128.const f64x2 -700 -700))
        (f64x2.le (local.get $hi) (v128.const f64x2 0 0))))
      (f64x2.ne (local.get $total) (local.get $total)))))

  ;; out[i] = m[i]·table(x[i]) for i < n, in float64 rounded once to float32: GELU forward with m = x
  ;; and the Φ table, its gradient with m = dy and the GELU' table (lib/backend/wasm_fused.ts: 512
  ;; cubics over [−8, 8], four float64 coefficients each). The same operations in the same order as
  ;; that file's JS loops, so the same bits; below −8 the table is 0, from 8 on 1, NaN for NaN. Two
  ;; values per iteration (the last one alone when n is odd), the cubic written inline (a call per
  ;; pair cost ~8 %).
  (func (export "cubic_times") (param $table i32) (param $x i32) (param $m i32) (param $out i32) (param $n i32)
    (local $i i32) (local $at i32) (local $pair i32) (local $xd v128) (local $md v128)
    (local $t v128) (local $k v128) (local $u v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128)
    (local $hi1 v128) (local $o0 i32) (local $o1 i32) (local $y v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $pair (i32.le_u (i32.add (local.get $i) (i32.const 2)) (local.get $n)))
      (if (local.get $pair)
        (then
          (local.set $xd (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $x) (local.get $at)))))
          (local.set $md (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $m) (local.get $at))))))
        (else
          (local.set $xd (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $at))))))
          (local.set $md (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $at))))))))
      (local.set $t (f64x2.mul (f64x2.add (local.get $xd) (v128.const f64x2 8 8)) (v128.const f64x2 32 32)))
      ;; Interval k = floor(t), t clamped to [0, 512] (NaN to 512): from 8 on (t ≥ 512) the table's extra
      ;; entry 512, the constant 1; below it the cubics, zeroed below (t ≤ 0, x ≤ −8) by the mask of
      ;; t > 0. k as an integer: the low bits of k + 2^52.
      (local.set $u (f64x2.pmax (f64x2.pmin (v128.const f64x2 512 512) (local.get $t)) (v128.const f64x2 0 0)))
      (local.set $k (f64x2.floor (local.get $u)))
      (local.set $u (f64x2.sub (f64x2.sub (local.get $u) (local.get $k)) (v128.const f64x2 0.5 0.5)))
      (local.set $k (f64x2.add (local.get $k) (v128.const f64x2 0x1p52 0x1p52)))
      (local.set $o0 (i32.add (local.get $table)
        (i32.shl (i32.wrap_i64 (i64x2.extract_lane 0 (local.get $k))) (i32.const 5))))
      (local.set $o1 (i32.add (local.get $table)
        (i32.shl (i32.wrap_i64 (i64x2.extract_lane 1 (local.get $k))) (i32.const 5))))
      (local.set $lo0 (v128.load (local.get $o0)))
      (local.set $hi0 (v128.load offset=16 (local.get $o0)))
      (local.set $lo1 (v128.load (local.get $o1)))
      (local.set $hi1 (v128.load offset=16 (local.get $o1)))
      (local.set $y (f32x4.demote_f64x2_zero (f64x2.mul (local.get $md)
        (v128.or
          (v128.and
            ;; c0 + u·(c1 + u·(c2 + u·c3)), coefficient j of both values gathered by a shuffle.
            (f64x2.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $lo0) (local.get $lo1))
              (f64x2.mul (local.get $u)
                (f64x2.add
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $lo0) (local.get $lo1))
                  (f64x2.mul (local.get $u)
                    (f64x2.add
                      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $hi0) (local.get $hi1))
                      (f64x2.mul (local.get $u)
                        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $hi0) (local.get $hi1))))))))
            (f64x2.gt (local.get $t) (v128.const f64x2 0 0)))
          ;; NaN stays NaN.
          (f64x2.ne (local.get $xd) (local.get $xd))))))
      (if (local.get $pair)
        (then
          (v128.store64_lane align=4 0 (i32.add (local.get $out) (local.get $at)) (local.get $y))
          (local.set $i (i32.add (local.get $i) (i32.const 2))))
        (else
          (f32.store (i32.add (local.get $out) (local.get $at)) (f32x4.extract_lane 0 (local.get $y)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))))
      (br $next))))

  ;; One AdamW step in place over n float32 parameters, in float64 with the operations, constants and
  ;; order of lib/train/optimizer.ts's host loop (so the same bits), two per instruction:
  ;;   g = grad·scale;  m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g·g
  ;;   p' = p − lr·((m'/corr1) / (√(v'/corr2) + ε) + wd·p);  m', v', p' rounded to float32.
  (func (export "adamw")
    (param $p i32) (param $grad i32) (param $m i32) (param $v i32) (param $n i32)
    (param $scale f64) (param $b1 f64) (param $c1 f64) (param $b2 f64) (param $c2 f64) (param $lr f64)
    (param $corr1 f64) (param $corr2 f64) (param $eps f64) (param $wd f64)
    (local $i i32) (local $n2 i32) (local $at i32)
    (local $g v128) (local $mi v128) (local $vi v128) (local $pi v128)
    (local $gs f64) (local $ms f64) (local $vs f64) (local $ps f64)
    (local $vscale v128) (local $vb1 v128) (local $vc1 v128) (local $vb2 v128) (local $vc2 v128)
    (local $vlr v128) (local $vcorr1 v128) (local $vcorr2 v128) (local $veps v128) (local $vwd v128)
    (local.set $vscale (f64x2.splat (local.get $scale)))
    (local.set $vb1 (f64x2.splat (local.get $b1)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $vb2 (f64x2.splat (local.get $b2)))
    (local.set $vc2 (f64x2.splat (local.get $c2)))
    (local.set $vlr (f64x2.splat (local.get $lr)))
    (local.set $vcorr1 (f64x2.splat (local.get $corr1)))
    (local.set $vcorr2 (f64x2.splat (local.get $corr2)))
    (local.set $veps (f64x2.splat (local.get $eps)))
    (local.set $vwd (f64x2.splat (local.get $wd)))
    (local.set $n2 (i32.and (local.get $n) (i32.const -2)))
    (block $done (loop $two
      (br_if $done (i32.ge_u (local.get $i) (local.get $n2)))
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $g (f64x2.mul
        (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $grad) (local.get $at))))
        (local.get $vscale)))
      (local.set $mi (f64x2.add
        (f64x2.mul (local.get $vb1)
          (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $m) (local.get $at)))))
        (f64x2.mul (local.get $vc1) (local.get $g))))
      (local.set $vi (f64x2.add
        (f64x2.mul (local.get $vb2)
          (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $v) (local.get $at)))))
        (f64x2.mul (f64x2.mul (local.get $vc2) (local.get $g)) (local.get $g))))
      (local.set $pi (f64x2.promote_low_f32x4 (v128.load64_zero align=4 (i32.add (local.get $p) (local.get $at)))))
      (v128.store64_lane align=4 0 (i32.add (local.get $m) (local.get $at)) (f32x4.demote_f64x2_zero (local.get $mi)))
      (v128.store64_lane align=4 0 (i32.add (local.get $v) (local.get $at)) (f32x4.demote_f64x2_zero (local.get $vi)))
      (v128.store64_lane align=4 0 (i32.add (local.get $p) (local.get $at))
        (f32x4.demote_f64x2_zero
          (f64x2.sub (local.get $pi)
            (f64x2.mul (local.get $vlr)
              (f64x2.add
                (f64x2.div
                  (f64x2.div (local.get $mi) (local.get $vcorr1))
                  (f64x2.add (f64x2.sqrt (f64x2.div (local.get $vi) (local.get $vcorr2))) (local.get $veps)))
                (f64x2.mul (local.get $vwd) (local.get $pi)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br $two)))
    (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $at (i32.shl (local.get $i) (i32.const 2)))
      (local.set $gs (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $grad) (local.get $at)))) (local.get $scale)))
      (local.set $ms (f64.add
        (f64.mul (local.get $b1) (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $at)))))
        (f64.mul (local.get $c1) (local.get $gs))))
      (local.set $vs (f64.add
        (f64.mul (local.get $b2) (f64.promote_f32 (f32.load (i32.add (local.get $v) (local.get $at)))))
        (f64.mul (f64.mul (local.get $c2) (local.get $gs)) (local.get $gs))))
      (local.set $ps (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $at)))))
      (f32.store (i32.add (local.get $m) (local.get $at)) (f32.demote_f64 (local.get $ms)))
      (f32.store (i32.add (local.get $v) (local.get $at)) (f32.demote_f64 (local.get $vs)))
      (f32.store (i32.add (local.get $p) (local.get $at))
        (f32.demote_f64
          (f64.sub (local.get $ps)
            (f64.mul (local.get $lr)
              (f64.add
                (f64.div
                  (f64.div (local.get $ms) (local.get $corr1))
                  (f64.add (f64.sqrt (f64.div (local.get $vs) (local.get $corr2))) (local.get $eps)))
                (f64.mul (local.get $wd) (local.get $ps))))))))))

  ;; acc + Σ x[i]² over n float32s, in float64 and in index order (the optimiser's global norm, as its
  ;; JS loop sums it: the same bits).
  (func (export "sum_squares") (param $x i32) (param $n i32) (param $acc f64) (result f64)
    (local $end i32) (local $g f64)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $g (f64.promote_f32 (f32.load (local.get $x))))
      (local.set $acc (f64.add (local.get $acc) (f64.mul (local.get $g) (local.get $g))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (br $next)))
    (local.get $acc))

  ;; The gradient of the mean cross-entropy over `rows` rows of `cols` softmax probabilities:
  ;; out = (probs − oneHot(targets))·scale in float32 (scale = dy / rows), as the plain ops compute it;
  ;; p − 0 is p bit for bit, so every element is p·scale but the target's, (p − 1)·scale. A target out
  ;; of [0, cols) has no 1 (tf.oneHot's rule).
  (func (export "softmax_ce_grad") (param $probs i32) (param $targets i32) (param $out i32)
    (param $rows i32) (param $cols i32) (param $scale f32)
    (local $r i32) (local $j i32) (local $cols4 i32) (local $row i32) (local $t i32) (local $vscale v128)
    (local.set $vscale (f32x4.splat (local.get $scale)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2)))
      (local.set $j (i32.const 0))
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $j) (local.get $cols4)))
        (v128.store align=4 (i32.add (local.get $out) (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (f32x4.mul
            (v128.load align=4 (i32.add (local.get $probs) (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
            (local.get $vscale)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l)))
      (block $dt (loop $lt
        (br_if $dt (i32.ge_u (local.get $j) (local.get $cols)))
        (f32.store (i32.add (local.get $out) (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
          (f32.mul
            (f32.load (i32.add (local.get $probs) (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
            (local.get $scale)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lt)))
      (local.set $t (i32.load (i32.add (local.get $targets) (i32.shl (local.get $r) (i32.const 2)))))
      (if (i32.lt_u (local.get $t) (local.get $cols)) (then
        (f32.store (i32.add (local.get $out) (i32.add (local.get $row) (i32.shl (local.get $t) (i32.const 2))))
          (f32.mul
            (f32.sub
              (f32.load (i32.add (local.get $probs) (i32.add (local.get $row) (i32.shl (local.get $t) (i32.const 2)))))
              (f32.const 1))
            (local.get $scale)))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop))))

  ;; dst row k = src row idx[k], for k < n, rows of `rowBytes` bytes: an embedding lookup as one copy
  ;; per row (tf.gather on axis 0; lib/backend/wasm_gather.ts checks the indices first).
  (func (export "copy_rows") (param $src i32) (param $dst i32) (param $idx i32) (param $n i32) (param $rowBytes i32)
    (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (memory.copy
        (i32.add (local.get $dst) (i32.mul (local.get $k) (local.get $rowBytes)))
        (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (local.get $rowBytes)))
        (local.get $rowBytes))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next))))

  ;; out[s] = Σ_{i: ids[i] = s} x[i] over rows of `inner` float32s, out zeroed first and the rows added
  ;; in index order (UnsortedSegmentSum; lib/backend/wasm_kernels.ts's loop, the same bits). Ids outside
  ;; [0, segments) are dropped, as TensorFlow drops them.
  (func (export "segment_sum")
    (param $x i32) (param $ids i32) (param $out i32) (param $n i32) (param $inner i32) (param $segments i32)
    (local $i i32) (local $j i32) (local $s i32) (local $inner4 i32) (local $src i32) (local $dst i32)
    (memory.fill (local.get $out) (i32.const 0) (i32.shl (i32.mul (local.get $segments) (local.get $inner)) (i32.const 2)))
    (local.set $inner4 (i32.and (local.get $inner) (i32.const -4)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $s (i32.load (i32.add (local.get $ids) (i32.shl (local.get $i) (i32.const 2)))))
      (if (i32.lt_u (local.get $s) (local.get $segments)) (then
        (local.set $src (i32.add (local.get $x) (i32.shl (i32.mul (local.get $i) (local.get $inner)) (i32.const 2))))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $s) (local.get $inner)) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $d4 (loop $l4
          (br_if $d4 (i32.ge_u (local.get $j) (local.get $inner4)))
          (v128.store align=4 (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
            (f32x4.add
              (v128.load align=4 (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2))))
              (v128.load align=4 (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l4)))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $j) (local.get $inner)))
          (f32.store (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2)))
            (f32.add
              (f32.load (i32.add (local.get $dst) (i32.shl (local.get $j) (i32.const 2))))
              (f32.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $l1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
)
