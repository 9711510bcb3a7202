import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';

/**
 * Read access to the one model object: GetObject on its key (and version). With `listBucket`,
 * also ListBucket on the bucket, so that a missing object reads as "does not exist" rather than
 * "access denied". The listing is limited to the model's key by an `s3:prefix` condition; S3 still
 * answers it with every key that begins with that key, so it is for a bucket whose keys the
 * endpoint chooses (its own), not for a key a user named in a shared bucket.
 */
export function grantReadModelObject(role: iam.IRole, bucket: s3.IBucket, key: string, version: string | undefined, options: { readonly listBucket?: boolean } = {}): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: version ? ['s3:GetObject', 's3:GetObjectVersion'] : ['s3:GetObject'],
      resources: [bucket.arnForObjects(key)],
    }),
  );
  if (options.listBucket) {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringEquals: { 's3:prefix': key } } }));
  }
  bucket.encryptionKey?.grantDecrypt(role);
}
